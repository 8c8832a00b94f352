package xfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// forkRoom is how many extent records file p's data fork holds.
func forkRoom(t *testing.T, f *FS, p string) int {
	t.Helper()
	r, err := f.loadRaw(uint64(lookupPath(t, f, p).Ino))
	if err != nil {
		t.Fatal(err)
	}
	return len(r.dataFork()) / 16
}

// fillExtents writes var/small one separated block at a time until its
// extent list fills the inode: one more makes a B+tree.
func fillExtents(t *testing.T, f *FS, img string) map[string]testutil.Node {
	t.Helper()
	ino := lookupPath(t, f, "var/small").Ino
	room := forkRoom(t, f, "var/small")
	for i := 1; ; i++ {
		r, err := f.loadRaw(uint64(ino))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.ex) >= room {
			break
		}
		if _, err := f.WriteAt(ino, []byte{byte(i)}, int64(2*i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	return testutil.EngineTree(t, openImage(t, img), true)
}

// mapShape is file p's data fork format and, for a B+tree, its levels
// (the root's level plus one).
func mapShape(t *testing.T, f *FS, p string) (uint8, int) {
	t.Helper()
	in, err := f.readInode(uint64(lookupPath(t, f, p).Ino))
	if err != nil {
		t.Fatal(err)
	}
	if in.format != fmtBtree {
		return in.format, 0
	}
	return in.format, int(be.Uint16(in.dfork)) + 1
}

// both makes step number i through offvm and through the kernel at mnt.
func (s step) both(t *testing.T, f *FS, mnt string, i int) {
	t.Helper()
	if err := s.offvm(f, lookupPath(t, f, s.path).Ino); err != nil {
		t.Fatalf("step %d (%s): %v", i, s.path, err)
	}
	if err := s.kernel(mnt); err != nil {
		t.Fatalf("kernel step %d: %v", i, err)
	}
}

// newImage makes an empty v5 XFS of size with mkfs.xfs's options args
// and mounts it through a loop device.
func newImage(t *testing.T, size string, args ...string) (img, mnt string) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	testutil.RequireTool(t, "xfs_db", "xfsprogs")
	img = filepath.Join(t.TempDir(), "xfs.img")
	testutil.Run(t, "truncate", "-s", size, img)
	mkfs(t, img, args...)
	return img, mountLoop(t, img)
}

// mountLoop mounts img read-write through a loop device; a test that
// fails before its own umount leaves no mount behind.
func mountLoop(t *testing.T, img string) string {
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop", img, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// bmbtImage holds files whose extents the kernel put in B+trees: frag
// (600 one-block extents, one level of leaves), deep (5,015 extents,
// more leaves than a 512-byte inode's root names) and grow (one block).
func bmbtImage(t *testing.T) string {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	testutil.Run(t, "truncate", "-s", "300M", img)
	mkfs(t, img, "-m", "crc=1")
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testutil.Run(t, "mount", "-o", "loop", img, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	for _, c := range []struct {
		name string
		n    int
	}{{"frag", 600}, {"deep", 5015}, {"grow", 1}} {
		fh, err := os.Create(filepath.Join(mnt, c.name))
		if err != nil {
			t.Fatal(err)
		}
		// every other block, so that nothing merges, from the end down:
		// writes below EOF get no speculative preallocation, which would
		// leave unwritten extents in the holes
		for i := c.n - 1; i >= 0; i-- {
			fh.WriteAt(pattern(4096, byte(i)), int64(i)*8192)
		}
		fh.Close()
	}
	testutil.Run(t, "umount", mnt)
	return img
}

// TestBmbtAgainstKernel: files grow into extent B+trees, grow them by
// a level, shrink by a level and back to extent lists, and a B+tree-
// mapped file is removed, through offvm and through the kernel on a
// copy; xfs_repair -n is clean and the kernel's mounts agree.
func TestBmbtAgainstKernel(t *testing.T) {
	img := bmbtImage(t)
	ref := copyFile(t, img)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, lv := mapShape(t, f, "deep"); lv < 3 {
		t.Fatalf("the kernel's deep has %d levels, want 3", lv)
	}
	type shape struct {
		format uint8
		levels int
	}
	var steps []step
	var after []shape
	add := func(s shape, ss ...step) {
		steps = append(steps, ss...)
		for range ss {
			after = append(after, shape{255, 0})
		}
		after[len(after)-1] = s
	}
	var grow []step
	for i := 1; i <= 30; i++ {
		grow = append(grow, step{path: "grow", off: int64(2*i) * 4096, data: []byte{byte(i)}, size: -1})
	}
	add(shape{fmtBtree, 2}, grow...)
	var holes []step
	for k := 10; k < 20; k++ {
		holes = append(holes, step{path: "frag", off: int64(k)*8192 + 4096, data: pattern(4096, byte(k)), size: -1})
	}
	add(shape{fmtBtree, 2}, holes...)
	add(shape{fmtBtree, 2}, step{path: "frag", off: 700 * 8192, data: []byte("past the end"), size: -1})
	add(shape{fmtBtree, 3}, step{path: "deep", off: 77*8192 + 5, data: []byte("in place"), size: -1})
	// the most extents a root naming leaves maps (the kernel gave deep
	// an attribute fork offset, so its root is smaller than the inode)
	in, _ := f.readInode(uint64(lookupPath(t, f, "deep").Ino))
	two := (len(in.dfork) - bmdrHdr) / 16 * ((4096 - bmbtHdr5) / 16)
	if two >= 5015 {
		t.Fatalf("deep's root names %d extents' leaves: no third level to remove", two)
	}
	add(shape{fmtBtree, 2}, step{path: "deep", size: int64(two-5)*8192 - 4096})
	var deeper []step
	for i := 0; i < 15; i++ {
		deeper = append(deeper, step{path: "deep", off: int64(two-5+i) * 8192, data: pattern(100, byte(i)), size: -1})
	}
	add(shape{fmtBtree, 3}, deeper...)
	add(shape{fmtBtree, 2}, step{path: "deep", size: 200 * 8192})
	add(shape{fmtExtents, 0}, step{path: "deep", size: 10*8192 + 1})
	add(shape{fmtExtents, 0}, step{path: "grow", size: 4096})
	mnt := mountLoop(t, ref)
	for i, s := range steps {
		s.both(t, f, mnt, i)
		if w := after[i]; w.format != 255 {
			if fm, lv := mapShape(t, f, s.path); fm != w.format || lv != w.levels {
				debugShape(t, f, s.path)
				t.Errorf("after step %d %s is format %d with %d levels, want %d with %d", i, s.path, fm, lv, w.format, w.levels)
			}
		}
	}
	if err := f.Unlink(f.Root(), "frag"); err != nil {
		t.Fatalf("unlink frag: %v", err)
	}
	os.Remove(filepath.Join(mnt, "frag"))
	testutil.Run(t, "umount", mnt)
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
}

func debugShape(t *testing.T, f *FS, p string) {
	in, _ := f.readInode(uint64(lookupPath(t, f, p).Ino))
	t.Logf("%s: format %d nextents %d dfork %d root level %d recs %d", p, in.format, in.nextents, len(in.dfork), be.Uint16(in.dfork), be.Uint16(in.dfork[2:]))
}
