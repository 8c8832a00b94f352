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

// fragmentedImage is a 1 KiB-block v5 XFS whose free space is one-block
// holes (a preallocated file "big" holds the rest, holes punched in
// every other block of its last smallMiB) but for the kernel's
// reserves, holding the empty file "file": the attribute blocks the
// kernel allocates there are extents of their own.
func fragmentedImage(t *testing.T, smallMiB int64) string {
	img, mnt := newImage(t, "300M", "-m", "crc=1", "-b", "size=1024")
	if err := os.WriteFile(filepath.Join(mnt, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "xfs_io", "-x", "-c", "resblks 0", mnt) // no reserve left contiguous
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	big, err := os.Create(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	size := free - 1<<20 // what the file's own B+tree will need
	if err := unix.Fallocate(int(big.Fd()), 0, 0, size); err != nil {
		t.Fatal(err)
	}
	for off := size - smallMiB<<20; off < size; off += 2048 {
		if err := unix.Fallocate(int(big.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, 1024); err != nil {
			t.Fatal(err)
		}
	}
	big.Close()
	testutil.Run(t, "umount", mnt)
	return img
}

// takeRuns has offvm's file "fill" take every free run of two blocks or
// more: the kernel keeps per-AG reserves it does not hand out, which
// offvm's allocator would find.
func takeRuns(t *testing.T, f *FS) {
	sp := f.newSpace()
	var runs int64
	for ag := uint32(0); ag < f.sb.agCount; ag++ {
		a, err := sp.ag(ag)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range a.recs {
			if r.count > 1 {
				runs += int64(r.count)
			}
		}
	}
	fill, err := f.Create(f.Root(), "fill", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(fill.Ino, pattern(int(runs)*1024, 1), 0); err != nil {
		t.Fatal(err)
	}
}

// aforkFormat is the file's attribute fork format as xfs_db prints it.
func aforkFormat(t *testing.T, img string) string {
	out := testutil.Run(t, "xfs_db", "-r", "-c", "path /file", "-c", "p core.aformat", img)
	f := strings.Fields(out)
	return strings.Trim(f[len(f)-1], "()")
}

// TestAttrBtreeAgainstKernel: attributes whose blocks are scattered
// over more extents than the inode holds. The kernel makes its
// attribute fork a B+tree on a copy, offvm makes one too (set 120,
// remove 20): the kernel reads offvm's as its own. Then offvm changes
// the kernel's B+tree fork and the kernel the same on a copy, and one
// is unlinked. xfs_repair -n is clean after each.
func TestAttrBtreeAgainstKernel(t *testing.T) {
	img := fragmentedImage(t, 30) // holes beyond the kernel's reserve
	ref := copyFile(t, img)
	mnt := mountLoop(t, ref)
	testutil.Run(t, "xfs_io", "-x", "-c", "resblks 0", mnt)
	kfile := filepath.Join(mnt, "file")
	change := func(f *FS, from, to int, remove bool) {
		t.Helper()
		ino := lookupPath(t, f, "file").Ino
		for i := from; i < to; i++ {
			name, v := treeAttr(i)
			var err error
			if remove {
				err = f.RemoveXattr(ino, name)
			} else {
				err = f.SetXattr(ino, name, v)
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	kchange := func(from, to int, remove bool) {
		t.Helper()
		for i := from; i < to; i++ {
			name, v := treeAttr(i)
			var err error
			if remove {
				err = unix.Removexattr(kfile, name)
			} else {
				err = unix.Setxattr(kfile, name, v, 0)
			}
			if err != nil {
				t.Fatalf("kernel %s: %v", name, err)
			}
		}
	}
	kchange(0, 120, false)
	kchange(30, 50, true)
	kernelFile := testutil.KernelTree(t, mnt)["file"]
	testutil.Run(t, "umount", mnt)
	if got := aforkFormat(t, ref); got != "btree" {
		t.Fatalf("the kernel's attribute fork is %s, want a B+tree", got)
	}
	f := runV4Open(t, img)
	takeRuns(t, f)
	change(f, 0, 120, false)
	change(f, 30, 50, true)
	if got := aforkFormat(t, img); got != "btree" {
		t.Fatalf("offvm's attribute fork is %s, want a B+tree", got)
	}
	repairClean(t, img)
	got := kernelView(t, img)
	testutil.CompareTrees(t, map[string]testutil.Node{"file": kernelFile}, map[string]testutil.Node{"file": got["file"]})
	testutil.CompareTrees(t, got, testutil.EngineTree(t, openImage(t, img), true))

	img2 := copyFile(t, ref) // the kernel's B+tree, changed by offvm
	testutil.Run(t, "mount", "-o", "loop", ref, mnt)
	f2 := runV4Open(t, img2)
	change(f2, 60, 80, true)
	change(f2, 200, 210, false)
	kchange(60, 80, true)
	kchange(200, 210, false)
	want := testutil.KernelTree(t, mnt)
	testutil.Run(t, "umount", mnt) // the copy shares img2's UUID
	repairClean(t, img2)
	got = kernelView(t, img2)
	testutil.CompareTrees(t, want, got)
	if len(got["file"].Xattrs) != 90 {
		t.Errorf("the kernel reads %d attributes, want 90", len(got["file"].Xattrs))
	}
	if err := f2.Unlink(f2.Root(), "file"); err != nil { // its tree's blocks freed
		t.Fatal(err)
	}
	repairClean(t, img2)
}

// TestAttrBtreeFailure fails the writes of setting, removing and
// unlinking with an attribute fork in a B+tree (offvm's, on fragmented
// free space) in turn: EIO, xfs_repair -n clean, the tree as before.
func TestAttrBtreeFailure(t *testing.T) {
	img := fragmentedImage(t, 30)
	f := runV4Open(t, img)
	takeRuns(t, f)
	ino := lookupPath(t, f, "file").Ino
	for i := 0; i < 100; i++ {
		name, v := treeAttr(i)
		if err := f.SetXattr(ino, name, v); err != nil {
			t.Fatal(err)
		}
	}
	if got := aforkFormat(t, img); got != "btree" {
		t.Fatalf("attribute fork %s, want a B+tree", got)
	}
	want := testutil.EngineTree(t, openImage(t, img), true)
	for _, op := range []failOp{
		{"setxattr in an attribute B+tree", func(t *testing.T, f *FS) error {
			name, v := treeAttr(100)
			return f.SetXattr(lookupPath(t, f, "file").Ino, name, v)
		}},
		{"removexattr from an attribute B+tree", func(t *testing.T, f *FS) error {
			name, _ := treeAttr(3)
			return f.RemoveXattr(lookupPath(t, f, "file").Ino, name)
		}},
		{"unlink a file with an attribute B+tree", func(t *testing.T, f *FS) error {
			return f.Unlink(f.Root(), "file")
		}},
	} {
		failEachWrite(t, img, want, op.name, op.do)
	}
}
