package ntfs

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// TestManyStreamsAndLongLinks writes, with offvm, a named stream on each
// of 1,200 files and a file with 9 hard links whose names are 200+
// characters long (its $FILE_NAMEs need extension records), then checks
// them with tools no one here wrote: every stream's bytes through
// ntfs-3g's xattrs (getfattr), every stream's name through sleuthkit
// (fls), the links through ntfsinfo and fls, the volume through
// ntfsresize (issue 11).
func TestManyStreamsAndLongLinks(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "getfattr", "attr")
	testutil.RequireTool(t, "fls", "sleuthkit")
	testutil.RequireTool(t, "ntfsinfo", "ntfs-3g")
	img := mkntfsImage(t, t.TempDir(), 96, 4096)
	v := openVol(t, img, 0, Options{})
	ads, err := v.Mkdir(v.Root(), "ads", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	const files = 1200
	for i := range files {
		a, err := v.Create(ads.Ino, fmt.Sprintf("f%04d.txt", i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.WriteAt(a.Ino, []byte("main"), 0); err != nil {
			t.Fatal(err)
		}
		val := strings.Repeat(fmt.Sprintf("stream of %d;", i), 1+i%300) // resident and not
		if err := v.SetXattr(a.Ino, "user.Zone.Identifier", []byte(val)); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	target, err := v.Create(v.Root(), "target.dll", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt(target.Ino, []byte("linked content"), 0); err != nil {
		t.Fatal(err)
	}
	dirs := []volume.Ino{v.Root(), ads.Ino}
	for i := range 9 {
		n := fmt.Sprintf("link-%d-%s.dll", i, strings.Repeat("long-name-", 20+i%3))
		if _, err := v.Link(target.Ino, dirs[i%2], n); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
		names = append(names, n)
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, img)

	// the streams' bytes, through ntfs-3g
	mnt, unmount := mount3g(t, img, "ro")
	out, err := exec.Command("getfattr", "-R", "--absolute-names", "-e", "text", "-n", "user.Zone.Identifier", mnt+"/ads").Output()
	unmount()
	if err != nil && len(out) == 0 {
		t.Fatalf("getfattr: %v", err)
	}
	got := map[string]string{}
	var file string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "# file: "):
			file = l[len("# file: "):]
		case strings.HasPrefix(l, "user.Zone.Identifier="):
			got[file] = strings.Trim(l[len("user.Zone.Identifier="):], `"`)
		}
	}
	for i := range files {
		p := fmt.Sprintf("%s/ads/f%04d.txt", mnt, i)
		if want := strings.Repeat(fmt.Sprintf("stream of %d;", i), 1+i%300); got[p] != want {
			t.Fatalf("ntfs-3g reads %s's stream as %.40q (%d bytes), want %d bytes", p, got[p], len(got[p]), len(want))
		}
	}

	// the streams' names and the links, through sleuthkit
	fls, err := exec.Command("fls", "-r", "-p", img).Output()
	if err != nil {
		t.Fatalf("fls: %v", err)
	}
	streams := regexp.MustCompile(`(?m)^r/r \d+-128-\d+:\tads/f\d{4}\.txt:Zone\.Identifier$`).FindAllString(string(fls), -1)
	if len(streams) != files {
		t.Errorf("fls lists %d Zone.Identifier streams, want %d", len(streams), files)
	}
	for _, n := range names {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^r/r %d-128-\d+:\t(ads/)?%s$`, target.Ino, regexp.QuoteMeta(n)))
		if !re.Match(fls) {
			t.Errorf("fls does not list %s as inode %d", n, target.Ino)
		}
	}
	info, err := exec.Command("ntfsinfo", "-F", "/target.dll", img).CombinedOutput()
	if err != nil {
		t.Fatalf("ntfsinfo: %v\n%s", err, info)
	}
	for _, n := range append(names, "target.dll") {
		if !strings.Contains(string(info), n) {
			t.Errorf("ntfsinfo does not show the name %s", n)
		}
	}
	if m := regexp.MustCompile(`Number of Hard Links:\s+(\d+)`).FindSubmatch(info); m == nil || string(m[1]) != "10" {
		t.Errorf("ntfsinfo's hard link count: %q, want 10", m)
	}
	// the names cannot fit in one 1 KiB record: ntfsinfo must find some
	// of them in extension records, through the attribute list
	ext := regexp.MustCompile(`Dumping attribute \$FILE_NAME \(0x30\) from mft record (\d+)`).FindAllSubmatch(info, -1)
	spilled := 0
	for _, m := range ext {
		if string(m[1]) != fmt.Sprint(target.Ino) {
			spilled++
		}
	}
	if len(ext) != 10 || spilled == 0 {
		t.Errorf("ntfsinfo dumps %d $FILE_NAMEs, %d from extension records; want 10, some in extension records", len(ext), spilled)
	}
}
