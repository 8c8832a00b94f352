package ntfs

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// requireNTFSTools skips unless root and the ntfs-3g tools are present.
func requireNTFSTools(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkntfs", "ntfs-3g")
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

// mkntfsImage formats a sparse file of sizeMiB with the given cluster size.
func mkntfsImage(t testing.TB, dir string, sizeMiB int, cluster int, extra ...string) string {
	t.Helper()
	img := filepath.Join(dir, fmt.Sprintf("ntfs-%d.img", cluster))
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(sizeMiB) << 20)
	f.Close()
	args := append([]string{"-F", "-Q", "-q", "-L", "offvm", "-c", fmt.Sprint(cluster)}, extra...)
	testutil.Run(t, "mkntfs", append(args, img)...)
	return img
}

// mount3g mounts img with ntfs-3g and returns the mount point; unmount
// undoes it (also registered as cleanup).
func mount3g(t testing.TB, img string, opts ...string) (string, func()) {
	t.Helper()
	mnt, err := os.MkdirTemp("", "ntfs3g-")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{img, mnt}
	if len(opts) > 0 {
		args = append(args, "-o", strings.Join(opts, ","))
	}
	testutil.Run(t, "ntfs-3g", args...)
	done := false
	unmount := func() {
		if done {
			return
		}
		done = true
		for i := 0; i < 50; i++ {
			if exec.Command("fusermount", "-u", mnt).Run() == nil || exec.Command("umount", mnt).Run() == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Remove(mnt)
	}
	t.Cleanup(unmount)
	return mnt, unmount
}

// fillWorkload puts the read test's tree into a mounted volume through
// ordinary file operations.
func fillWorkload(t testing.TB, mnt string, compress bool, entries int) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	rnd := mrand.New(mrand.NewSource(1))
	big := filepath.Join(mnt, "big")
	must(os.Mkdir(big, 0o755))
	for i := 0; i < entries; i++ {
		must(os.WriteFile(filepath.Join(big, fmt.Sprintf("entry-%05d-%s.txt", i, strings.Repeat("x", i%40))), []byte(fmt.Sprint(i)), 0o644))
	}
	deep := mnt
	for i := 0; i < 20; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("level%02d", i))
	}
	must(os.MkdirAll(deep, 0o755))
	must(os.WriteFile(filepath.Join(deep, "bottom.txt"), []byte("deep down"), 0o644))
	uni := filepath.Join(mnt, "ünïcødé")
	must(os.Mkdir(uni, 0o755))
	for _, n := range []string{"日本語.txt", "Ελληνικά", "emoji-😀.bin", "Ωmega", "straße"} {
		must(os.WriteFile(filepath.Join(uni, n), []byte("name "+n), 0o644))
	}
	sizes := filepath.Join(mnt, "sizes")
	must(os.Mkdir(sizes, 0o755))
	for _, n := range []int{0, 1, 100, 700, 1023, 1024, 4095, 4096, 4097, 65536, 100000, 1 << 20, 3<<20 + 17} {
		b := make([]byte, n)
		rnd.Read(b)
		must(os.WriteFile(filepath.Join(sizes, fmt.Sprintf("f%d", n)), b, 0o644))
	}
	sp, err := os.Create(filepath.Join(mnt, "sparse.bin"))
	must(err)
	sp.WriteAt([]byte("start"), 0)
	sp.WriteAt([]byte("middle"), 2<<20)
	sp.WriteAt([]byte("end"), 5<<20)
	must(sp.Close())
	if compress {
		cd := filepath.Join(mnt, "compressed")
		must(os.Mkdir(cd, 0o755))
		testutil.Run(t, "setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800", cd)
		text := bytes.Repeat([]byte("offvm compresses this line well. "), 40000)
		must(os.WriteFile(filepath.Join(cd, "text.txt"), text, 0o644))
		mixed := make([]byte, 300000)
		rand.Read(mixed[:100000])
		copy(mixed[150000:], text)
		must(os.WriteFile(filepath.Join(cd, "mixed.bin"), mixed, 0o644))
	}
	ads := filepath.Join(mnt, "ads.txt")
	must(os.WriteFile(ads, []byte("main stream"), 0o644))
	testutil.Run(t, "setfattr", "-n", "user.s", "-v", "stream value", ads)
	testutil.Run(t, "setfattr", "-n", "user.Zone.Identifier", "-v", "[ZoneTransfer]", ads)
	must(os.Symlink("sizes/f100", filepath.Join(mnt, "link-rel")))
	must(os.Symlink("../ads.txt", filepath.Join(sizes, "link-up")))
	must(os.Link(ads, filepath.Join(sizes, "hardlink.txt")))
	must(os.Link(ads, filepath.Join(mnt, "hardlink2.txt")))
}

func TestReadNtfs3gVolumes(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "setfattr", "attr")
	for _, c := range []struct {
		cluster  int
		extra    []string
		compress bool
		entries  int
	}{
		{512, nil, true, 500},
		{4096, nil, true, 3000},
		{65536, nil, false, 500},
		{4096, []string{"-s", "4096"}, true, 500},
	} {
		t.Run(fmt.Sprintf("cluster%d%s", c.cluster, strings.Join(c.extra, "")), func(t *testing.T) {
			dir := t.TempDir()
			img := mkntfsImage(t, dir, 64, c.cluster, c.extra...)
			mnt, unmount := mount3g(t, img)
			fillWorkload(t, mnt, c.compress, c.entries)
			unmount()
			mnt, unmount = mount3g(t, img, "ro")
			want := walkHost(t, mnt)
			unmount()
			v := openVol(t, img, 0, Options{})
			if r := v.ReadOnlyReason(); r != "" {
				t.Errorf("ReadOnlyReason = %q after a clean ntfs-3g unmount", r)
			}
			got := walkVolume(t, v)
			diffTrees(t, want, got)
			if len(got) < c.entries {
				t.Errorf("only %d paths", len(got))
			}
			checkAttrs(t, v)
		})
	}
}

// checkAttrs checks what the walk does not: times, link counts, blocks of
// sparse files, system.ntfs_attrib of compressed files.
func checkAttrs(t *testing.T, v *Volume) {
	a, err := v.Lookup(v.Root(), "ADS.TXT")
	if err != nil {
		t.Fatalf("case-insensitive lookup: %v", err)
	}
	if a.Nlink != 3 {
		t.Errorf("ads.txt nlink = %d, want 3", a.Nlink)
	}
	if time.Since(a.Mtime) > time.Hour || time.Since(a.Mtime) < -time.Hour {
		t.Errorf("ads.txt mtime %v is not recent", a.Mtime)
	}
	sp, err := v.Lookup(v.Root(), "sparse.bin")
	if err != nil {
		t.Fatal(err)
	}
	if sp.Blocks*512 >= sp.Size {
		t.Errorf("sparse.bin: %d blocks for %d bytes: not sparse", sp.Blocks, sp.Size)
	}
	if cd, err := v.Lookup(v.Root(), "compressed"); err == nil {
		f, err := v.Lookup(cd.Ino, "text.txt")
		if err != nil {
			t.Fatal(err)
		}
		attr, _ := v.GetXattr(f.Ino, "system.ntfs_attrib")
		if len(attr) != 4 || attr[1]&0x08 == 0 {
			t.Errorf("text.txt attrib %x: compressed bit missing", attr)
		}
		if f.Blocks*512 >= f.Size/2 {
			t.Errorf("text.txt: %d blocks for %d bytes: not compressed", f.Blocks, f.Size)
		}
	}
}
