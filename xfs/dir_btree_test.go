package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// btreeDirImage makes a 300 MB v5 XFS whose directory big holds 3,000
// files of one block each, made by the kernel: the directory's blocks
// lie between the files' and its data fork is a B+tree.
func btreeDirImage(t *testing.T) string {
	img, mnt := newImage(t, "300M", "-m", "crc=1")
	os.Mkdir(filepath.Join(mnt, "big"), 0o755)
	for i := 0; i < 3000; i++ {
		if err := os.WriteFile(filepath.Join(mnt, "big", bigName(i)), pattern(4096, byte(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Run(t, "umount", mnt)
	return img
}

func bigName(i int) string { return fmt.Sprintf("file-with-a-longish-name-%04d", i) }

// dirFormat is the data fork format of path p as xfs_db prints it.
func dirFormat(t *testing.T, f *FS, img, p string) string {
	t.Helper()
	ino := lookupPath(t, f, p).Ino
	out := testutil.Run(t, "xfs_db", "-r", "-c", fmt.Sprintf("inode %d", ino), "-c", "p core.format", img)
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "core.format ="))
}

// TestBtreeDirAgainstKernel: in a directory whose data fork is a
// B+tree, files are created (new data blocks, the B+tree laid out
// again), renamed and unlinked until the directory is small enough for
// an extent list, through offvm and through the kernel on a copy;
// xfs_db sees the forms, xfs_repair -n is clean and the mounts agree.
func TestBtreeDirAgainstKernel(t *testing.T) {
	img := btreeDirImage(t)
	ref := copyFile(t, img)
	mnt := mountLoop(t, ref)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	if got := dirFormat(t, f, img, "big"); got != "3 (btree)" {
		t.Fatalf("the kernel's big is in format %s, want 3 (btree)", got)
	}
	big := lookupPath(t, f, "big").Ino
	for i := 3000; i < 3400; i++ {
		a, err := f.Create(big, bigName(i), 0o644)
		if err != nil {
			t.Fatalf("create %s: %v", bigName(i), err)
		}
		if _, err := f.WriteAt(a.Ino, pattern(4096, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(mnt, "big", bigName(i)), pattern(4096, byte(i)), 0o644)
	}
	if got := dirFormat(t, f, img, "big"); got != "3 (btree)" {
		t.Errorf("after the creates big is in format %s, want 3 (btree)", got)
	}
	for i := 0; i < 3400; i += 7 {
		if err := f.Rename(big, bigName(i), f.Root(), bigName(i)); err != nil {
			t.Fatalf("rename %s: %v", bigName(i), err)
		}
		os.Rename(filepath.Join(mnt, "big", bigName(i)), filepath.Join(mnt, bigName(i)))
	}
	for i := 0; i < 3400; i++ {
		if i%7 == 0 || (i < 100 && i%50 == 1) { // renamed, or kept in the first blocks
			continue
		}
		if err := f.Unlink(big, bigName(i)); err != nil {
			t.Fatalf("unlink %s: %v", bigName(i), err)
		}
		os.Remove(filepath.Join(mnt, "big", bigName(i)))
	}
	if got := dirFormat(t, f, img, "big"); got != "2 (extents)" {
		t.Errorf("after the unlinks big is in format %s, want 2 (extents)", got)
	}
	testutil.Run(t, "umount", mnt)
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
}

// TestBtreeDirFailure fails each write of changes to a B+tree-mapped
// directory (see TestInodeTreesFailure): the image stays as it was.
func TestBtreeDirFailure(t *testing.T) {
	pristine := btreeDirImage(t)
	failExact(t, pristine, btreeDirFailOps)
}

var btreeDirFailOps = []failOp{
	{"create in a B+tree directory", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "big").Ino, "new-name", 0o644)
		return err
	}},
	{"unlink in a B+tree directory", func(t *testing.T, f *FS) error {
		return f.Unlink(lookupPath(t, f, "big").Ino, bigName(1234))
	}},
	{"rename out of a B+tree directory", func(t *testing.T, f *FS) error {
		return f.Rename(lookupPath(t, f, "big").Ino, bigName(17), f.Root(), "moved")
	}},
}
