package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"golang.org/x/sys/unix"
)

// Attribute trees of more than one node level: on 1 KiB blocks a node
// names 120 leaves, and a leaf holds two 300-byte values, so some 240
// attributes need a root over a level of nodes.

func treeAttr(i int) (string, []byte) { return fmt.Sprintf("user.fill%04d", i), pattern(300, byte(i)) }

// attrTreeImage is a 1 KiB-block v5 XFS holding the empty file "file".
func attrTreeImage(t *testing.T) string {
	img, mnt := newImage(t, "300M", "-m", "crc=1", "-b", "size=1024")
	if err := os.WriteFile(filepath.Join(mnt, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "umount", mnt)
	return img
}

// attrLevel is the level of the file's attribute block 0 as xfs_db
// reads it: 0 for a leaf, 1 for a node over leaves, 2 over nodes.
func attrLevel(t *testing.T, img string) int {
	t.Helper()
	out := testutil.Run(t, "xfs_db", "-r", "-c", "path /file", "-c", "ablock 0", "-c", "p hdr.info.hdr.magic", "-c", "p hdr.level", img)
	if !strings.Contains(out, "0x3ebe") {
		return 0
	}
	_, lv, _ := strings.Cut(strings.TrimSpace(out[strings.LastIndex(out, "hdr.level"):]), " = ")
	n, err := strconv.Atoi(strings.TrimSpace(lv))
	if err != nil {
		t.Fatalf("xfs_db: %q", out)
	}
	return n
}

// twoLevelAt is how many treeAttrs first need a root over nodes.
func twoLevelAt(t *testing.T, f *FS) int {
	var as []sfAttr
	for i := 0; ; i++ {
		name, v := treeAttr(i)
		as = append(as, sfAttr{name: []byte(strings.TrimPrefix(name, "user.")), value: v})
		l, err := f.layoutLeaf(&rawInode{b: make([]byte, f.sb.inodeSize)}, append([]sfAttr(nil), as...))
		if err != nil {
			t.Fatal(err)
		}
		if be.Uint16(l.blocks[0][8:]) == attrV5.node && be.Uint16(l.blocks[0][attrV5.info+2:]) == 2 {
			return i + 1
		}
	}
}

// TestXattrTreeAgainstKernel: attributes set until the tree needs two
// node levels, some removed from the middle, a remote value among them,
// then removed until one level is left, through offvm and through the
// kernel on a copy: xfs_repair -n is clean, xfs_db sees the levels,
// and the kernel's getxattr reads what it wrote itself.
func TestXattrTreeAgainstKernel(t *testing.T) {
	img := attrTreeImage(t)
	ref := copyFile(t, img)
	f := runV4Open(t, img)
	n := twoLevelAt(t, f) + 40
	mnt := mountLoop(t, ref)
	p := filepath.Join(mnt, "file")
	ino := lookupPath(t, f, "file").Ino
	set := func(i int, v []byte) {
		name, _ := treeAttr(i)
		if err := f.SetXattr(ino, name, v); err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
		if err := unix.Setxattr(p, name, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(i int) {
		name, _ := treeAttr(i)
		if err := f.RemoveXattr(ino, name); err != nil {
			t.Fatalf("remove %s: %v", name, err)
		}
		if err := unix.Removexattr(p, name); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		_, v := treeAttr(i)
		set(i, v)
	}
	set(n/2, pattern(3000, 9)) // replaced by a remote value
	for i := 50; i < 70; i++ {
		remove(i)
	}
	if lv := attrLevel(t, img); lv != 2 {
		t.Fatalf("%d attributes: block 0 at level %d, want 2", n, lv)
	}
	repairClean(t, img)
	views := func() (map[string]testutil.Node, map[string]testutil.Node) {
		want := testutil.KernelTree(t, mnt)
		testutil.Run(t, "umount", mnt) // the copy shares img's UUID
		got := kernelView(t, img)
		testutil.Run(t, "mount", "-o", "loop", ref, mnt)
		return want, got
	}
	want, got := views()
	testutil.CompareTrees(t, want, got)
	if len(got["file"].Xattrs) != n-20 {
		t.Fatalf("the kernel reads %d attributes, want %d", len(got["file"].Xattrs), n-20)
	}
	for i := 100; i < n; i++ {
		remove(i)
	}
	if lv := attrLevel(t, img); lv != 1 {
		t.Errorf("80 attributes: block 0 at level %d, want 1", lv)
	}
	repairClean(t, img)
	want, got = views()
	testutil.CompareTrees(t, want, got)
	testutil.CompareTrees(t, got, testutil.EngineTree(t, openImage(t, img), true))
}

// runV4Open opens img for writing (any version), failing if read-only.
func runV4Open(t *testing.T, img string) *FS {
	t.Helper()
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.ReadOnlyReason(); r != "" {
		t.Fatal(r)
	}
	return f
}

// TestXattrTreeFailure fails the writes of the changes that make, edit
// and free a two-level attribute tree in turn: EIO, xfs_repair -n
// clean, the attributes as before.
func TestXattrTreeFailure(t *testing.T) {
	base := attrTreeImage(t)
	f := runV4Open(t, base)
	n := twoLevelAt(t, f)
	ino := lookupPath(t, f, "file").Ino
	for i := 0; i < n-1; i++ {
		name, v := treeAttr(i)
		if err := f.SetXattr(ino, name, v); err != nil {
			t.Fatal(err)
		}
	}
	below := copyFile(t, base) // one attribute short of two levels
	name, v := treeAttr(n - 1)
	if err := f.SetXattr(ino, name, v); err != nil {
		t.Fatal(err)
	}
	if lv := attrLevel(t, base); lv != 2 {
		t.Fatalf("%d attributes: level %d, want 2", n, lv)
	}
	for _, c := range []struct {
		img string
		op  failOp
	}{
		{below, failOp{"setxattr making a two-level attribute tree", func(t *testing.T, f *FS) error {
			name, v := treeAttr(n - 1)
			return f.SetXattr(lookupPath(t, f, "file").Ino, name, v)
		}}},
		{base, failOp{"removexattr from a two-level attribute tree", func(t *testing.T, f *FS) error {
			name, _ := treeAttr(7)
			return f.RemoveXattr(lookupPath(t, f, "file").Ino, name)
		}}},
		{base, failOp{"unlink a file with a two-level attribute tree", func(t *testing.T, f *FS) error {
			return f.Unlink(f.Root(), "file")
		}}},
	} {
		want := testutil.EngineTree(t, openImage(t, c.img), true)
		failEachWrite(t, c.img, want, c.op.name, c.op.do)
	}
}
