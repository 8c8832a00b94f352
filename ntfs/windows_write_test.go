package ntfs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// Volumes Windows made, written with the workload of
// TestBigDirectoryWrites scaled to their size: overwrite, append,
// truncate, set times, create, delete (Windows' own files too), rename,
// mkdir, hard link and named streams in their existing directories.

// windowsVolume is one Windows-made volume of the corpus.
type windowsVolume struct {
	name       string
	img        func(t *testing.T) string // a private copy of the bare NTFS volume
	big, small string                    // the directories written in ("" is the root)
}

var windowsVolumes = []windowsVolume{
	{"dfir_ntfs/ntfs_index (Windows 10)", func(t *testing.T) string {
		return corpusVolume(t, corpusImage{"dfir_ntfs/ntfs_index.raw.gz", 65536})
	}, "", "test_dir"},
	{"velociraptor/test.vhdx (Windows Server 2022)", vhdxVolume, "", "Users/Administrator"},
}

// vhdxVolume converts velociraptor's test.vhdx with qemu-img and cuts
// out its NTFS partition (GPT, at byte 65536).
func vhdxVolume(t *testing.T) string {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "unzip", "unzip")
	zip := testutil.Corpus(t, "velociraptor/test.vhdx.zip")
	dir := t.TempDir()
	testutil.Run(t, "unzip", "-q", "-d", dir, zip)
	raw := filepath.Join(dir, "disk.raw")
	testutil.Run(t, "qemu-img", "convert", "-O", "raw", filepath.Join(dir, "test.vhdx"), raw)
	vol := filepath.Join(dir, "vol")
	testutil.Run(t, "dd", "if="+raw, "of="+vol, "bs=512", "skip=128", "count=6144", "status=none")
	return vol
}

// existingFiles lists the regular files ntfs-3g sees in dirs of img.
func existingFiles(t *testing.T, img string, dirs ...string) []string {
	mnt, unmount := mount3g(t, img, "ro")
	defer unmount()
	var out []string
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(mnt, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				out = append(out, path.Join(d, e.Name()))
			}
		}
	}
	sort.Strings(out)
	if len(out) < 2 {
		t.Fatalf("%s: %d files in %v, the workload needs two", img, len(out), dirs)
	}
	return out
}

// windowsWorkload is the write workload over files Windows made.
func windowsWorkload(big, small string, files []string) []wop {
	f := func(i int) string { return files[i%len(files)] }
	in := func(d, name string) string { return path.Join(d, name) }
	ops := []wop{
		{kind: "write", p: f(0), data: []byte("overwritten by offvm\r\n")},
		{kind: "write", p: f(1), data: pattern(9000, 3), off: 40}, // append past the old end
		{kind: "trunc", p: f(1), size: 5000},
		{kind: "utimes", p: f(0)},
		{kind: "xattr", p: f(0), q: "user.Zone.Identifier", data: []byte("[ZoneTransfer]\r\nZoneId=3\r\n")},
		{kind: "xattr", p: f(1), q: "user.offvm", data: pattern(300, 9)},
		{kind: "mkdir", p: in(small, "offvm-dir")},
		{kind: "link", p: f(1), q: in(small, "offvm-dir/hard-link-to-a-windows-file.txt")},
		{kind: "link", p: f(1), q: in(big, "second name of a windows file with a long name.txt")},
	}
	for i := 0; i < 120; i++ {
		ops = append(ops, wop{kind: "write", p: in(big, fmt.Sprintf("new-patch-file-%03d-with-a-long-windows-style-name.dll", i)), data: []byte(fmt.Sprint(i))})
	}
	for i := 0; i < 120; i += 2 {
		ops = append(ops, wop{kind: "unlink", p: in(big, fmt.Sprintf("new-patch-file-%03d-with-a-long-windows-style-name.dll", i))})
	}
	for i := 1; i < 21; i += 2 {
		p := in(big, fmt.Sprintf("new-patch-file-%03d-with-a-long-windows-style-name.dll", i))
		ops = append(ops, wop{kind: "rename", p: p, q: in(big, "renamed-"+path.Base(p))})
	}
	ops = append(ops,
		wop{kind: "rename", p: in(big, "new-patch-file-021-with-a-long-windows-style-name.dll"), q: in(small, "moved-in.dll")},
		wop{kind: "unlink", p: f(len(files) - 1)}, // a file Windows made
	)
	return ops
}

// TestWindowsVolumesWrites applies the workload to each Windows-made
// volume through our engine and through ntfs-3g on a copy: ntfsresize
// is clean, the ntfs-3g trees (contents, streams, attributes) match,
// ntfscat, fls -r and icat agree, and ntfs-3g deletes everything after.
func TestWindowsVolumesWrites(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "setfattr", "attr")
	for _, w := range windowsVolumes {
		t.Run(w.name, func(t *testing.T) {
			ours := w.img(t)
			files := existingFiles(t, ours, w.big, w.small)
			ops := windowsWorkload(w.big, w.small, files)
			got := writeBothWays(t, ours, ops)
			if n := countPrefix(got, "/"+path.Join(w.big, "new-patch-file-")); n != 49 { // 120 made, 60 deleted, 11 renamed
				t.Errorf("ntfs-3g lists %d new files in /%s, want 49", n, w.big)
			}
			checkTools(t, ours, got)
			checkIcat(t, ours, got)
			removeAllWith3g(t, ours)
		})
	}
}

// writeBothWays applies ops to img through our engine and to a copy
// through ntfs-3g, has ntfsresize check img and wants the two trees
// ntfs-3g reads to match; it returns ours.
func writeBothWays(t *testing.T, img string, ops []wop) map[string]entry {
	t.Helper()
	ref := filepath.Join(t.TempDir(), "ref")
	copyFile(t, img, ref)
	v := openVol(t, img, 0, Options{})
	if r := v.ReadOnlyReason(); r != "" {
		t.Fatalf("%s refused: %s", img, r)
	}
	mnt, unmount := mount3g(t, ref)
	applyHost(t, mnt, ops)
	unmount()
	applyEngine(t, v, ops)
	checkConsistent(t, img)
	mnt, unmount = mount3g(t, ref, "ro")
	want := walkHost(t, mnt)
	unmount()
	mnt, unmount = mount3g(t, img, "ro")
	got := walkHost(t, mnt)
	unmount()
	diffTrees(t, want, got)
	return got
}

// TestMBRWin512HasNoFileSystem records why mbr-win-512 is not in
// TestWindowsVolumesWrites: Windows partitioned it, but its logical
// drives were never formatted (they read as zeros), so there is no
// NTFS to write; partition_test.go reads its partition chain.
func TestMBRWin512HasNoFileSystem(t *testing.T) {
	tarball := testutil.Corpus(t, "dfir_ntfs/mbr-win-512.raw.tar")
	dir := t.TempDir()
	testutil.Run(t, "tar", "-xf", tarball, "-C", dir)
	f, err := os.Open(filepath.Join(dir, "mbr-win-512.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, lba := range []int64{128, 16512, 32896, 49408, 65920, 82432, 98944} {
		b := make([]byte, 512)
		if _, err := f.ReadAt(b, lba*512); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b[3:11]), "NTFS") {
			t.Errorf("partition at sector %d holds an NTFS boot sector: add it to windowsVolumes", lba)
		}
	}
}

func countPrefix(tree map[string]entry, prefix string) int {
	n := 0
	for p := range tree {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}
