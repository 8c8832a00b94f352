package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// reflinkImage makes a 300 MB v5 XFS (reflink on, as mkfs makes it)
// whose files a, b and c share the same 25 blocks, copied by the kernel
// with cp --reflink=always.
func reflinkImage(t *testing.T) string {
	img, mnt := newImage(t, "300M", "-m", "crc=1,reflink=1")
	if err := os.WriteFile(filepath.Join(mnt, "a"), pattern(100000, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "cp", "--reflink=always", filepath.Join(mnt, "a"), filepath.Join(mnt, "b"))
	testutil.Run(t, "cp", "--reflink=always", filepath.Join(mnt, "a"), filepath.Join(mnt, "c"))
	testutil.Run(t, "umount", mnt)
	return img
}

// sharedBlocks is, as xfs_db reads the refcount B+trees' root leaves,
// how many blocks have each number of owners above one.
func sharedBlocks(t *testing.T, img string) map[int]int {
	t.Helper()
	out := map[int]int{}
	for ag := 0; ag < 4; ag++ {
		txt := testutil.Run(t, "xfs_db", "-r", "-c", fmt.Sprintf("agf %d", ag), "-c", "p refcntlevel", "-c", "addr refcntroot", "-c", "p recs", img)
		for _, line := range strings.Split(txt, "\n") {
			if lv, ok := strings.CutPrefix(line, "refcntlevel = "); ok && lv != "1" {
				t.Fatalf("AG %d: refcount B+tree of %s levels", ag, lv)
			}
			_, rec, ok := strings.Cut(line, ":[")
			if !ok {
				continue
			}
			f := strings.Split(strings.TrimSuffix(rec, "]"), ",")
			n, err1 := strconv.Atoi(f[1])
			refs, err2 := strconv.Atoi(f[2])
			if len(f) != 4 || err1 != nil || err2 != nil {
				t.Fatalf("xfs_db: %q", line)
			}
			out[refs] += n
		}
	}
	return out
}

// TestReflinkAgainstKernel writes into extents three files share,
// through offvm and through the kernel on a copy: partial blocks of a,
// one byte of b, all of c; then a is truncated inside a shared block,
// and c and b are unlinked. Each file's new bytes get blocks of their
// own; the refcount B+trees, as xfs_db reads them, hold what is left
// shared (none at the end, as the kernel's); xfs_repair -n is clean
// and the mounts agree.
func TestReflinkAgainstKernel(t *testing.T) {
	img := reflinkImage(t)
	if got := sharedBlocks(t, img); got[3] != 25 || len(got) != 1 {
		t.Fatalf("the kernel's copies share %v blocks by owners, want 25 with 3", got)
	}
	ref := copyFile(t, img)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		{path: "a", off: 50001, data: pattern(5000, 2), size: -1},
		{path: "b", off: 0, data: []byte("x"), size: -1},
		{path: "c", off: 0, data: pattern(100000, 3), size: -1},
		{path: "b", off: 99999, data: pattern(10000, 4), size: -1}, // the last shared block, then new ones
		{path: "a", size: 30001},                                   // a shared last block given its own, the rest released
	}
	mnt := mountLoop(t, ref)
	for i, s := range steps {
		s.both(t, f, mnt, i)
	}
	if err := f.Unlink(f.Root(), "c"); err != nil { // shares nothing any more
		t.Fatal(err)
	}
	os.Remove(filepath.Join(mnt, "c"))
	testutil.Run(t, "umount", mnt)
	if got := sharedBlocks(t, img); got[2] != 7-1 {
		t.Errorf("after the truncate, blocks shared by owners: %v, want 6 with 2", got)
	}
	if err := f.Unlink(f.Root(), "b"); err != nil { // a is alone
		t.Fatal(err)
	}
	mnt = mountLoop(t, ref)
	os.Remove(filepath.Join(mnt, "b"))
	testutil.Run(t, "umount", mnt)
	if want, got := sharedBlocks(t, ref), sharedBlocks(t, img); fmt.Sprint(want) != fmt.Sprint(got) || len(got) != 0 {
		t.Errorf("blocks shared by owners: offvm %v, kernel %v, want none", got, want)
	}
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
}

// TestReflinkFailure fails each write of copy-on-write writes, a
// truncate and an unlink of reflinked files (see TestWriteFailure):
// EIO, xfs_repair -n clean, the tree as before.
func TestReflinkFailure(t *testing.T) {
	pristine := reflinkImage(t)
	want := testutil.EngineTree(t, openImage(t, pristine), true)
	for _, op := range []failOp{
		{"write into blocks three files share", func(t *testing.T, f *FS) error {
			_, err := f.WriteAt(lookupPath(t, f, "a").Ino, pattern(5000, 2), 50001)
			return err
		}},
		{"write past shared blocks", func(t *testing.T, f *FS) error {
			_, err := f.WriteAt(lookupPath(t, f, "b").Ino, pattern(10000, 4), 99999)
			return err
		}},
		{"truncate inside a shared block", func(t *testing.T, f *FS) error { return f.Truncate(lookupPath(t, f, "a").Ino, 30001) }},
		{"unlink a reflinked file", func(t *testing.T, f *FS) error { return f.Unlink(f.Root(), "c") }},
	} {
		failEachWrite(t, pristine, want, op.name, op.do)
	}
}
