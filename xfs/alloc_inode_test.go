package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// inobtImage makes a 400 MB v5 XFS of 1 KiB blocks and 2 AGs (an inobt
// leaf then holds 60 chunks) with 10,200 files made by the kernel in
// 170 block-form directories, one file of every inode chunk removed
// again: both AGs' inobt and finobt have two levels. It returns the
// image and the files of another inode of every chunk (to unlink later).
func inobtImage(t *testing.T) (string, []string) {
	img, mnt := newImage(t, "400M", "-m", "crc=1", "-b", "size=1024", "-d", "agcount=2")
	var later, gone []string
	for d := 0; d < 170; d++ {
		sub := fmt.Sprintf("d%03d", d)
		if err := os.Mkdir(filepath.Join(mnt, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 60; i++ {
			p := filepath.Join(sub, fmt.Sprintf("f%02d", i))
			if err := os.WriteFile(filepath.Join(mnt, p), []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(filepath.Join(mnt, p))
			if err != nil {
				t.Fatal(err)
			}
			switch st.Sys().(*syscall.Stat_t).Ino % inosPerChunk {
			case 7: // removed when all are made, or its inode is taken again
				gone = append(gone, p)
			case 9:
				later = append(later, p)
			}
		}
	}
	for _, p := range gone {
		if err := os.Remove(filepath.Join(mnt, p)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Run(t, "umount", mnt)
	return img, later
}

// agiLevels is the inobt's and the finobt's levels of every AG, as
// xfs_db reads them.
func agiLevels(t *testing.T, img string) [][2]int {
	t.Helper()
	var out [][2]int
	for ag := 0; ag < 2; ag++ {
		v := agiFields(t, img, ag, "level", "free_level")
		out = append(out, [2]int{v["level"], v["free_level"]})
	}
	return out
}

// agiFields is what xfs_db prints for the named fields of AG ag's AGI.
func agiFields(t *testing.T, img string, ag int, fields ...string) map[string]int {
	t.Helper()
	return dbFields(t, img, fmt.Sprintf("agi %d", ag), fields...)
}

// dbFields is what xfs_db prints of the numeric fields of obj ("agf 1").
func dbFields(t *testing.T, img, obj string, fields ...string) map[string]int {
	t.Helper()
	txt := testutil.Run(t, "xfs_db", "-r", "-c", obj, "-c", "p "+strings.Join(fields, " "), img)
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		k, v, _ := strings.Cut(line, " = ")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("xfs_db: %q", line)
		}
		out[k] = n
	}
	if len(out) != len(fields) {
		t.Fatalf("xfs_db printed %v for %v", out, fields)
	}
	return out
}

// inodeCount is how many inodes the AGs' chunks hold, as xfs_db reads it.
func inodeCount(t *testing.T, img string) int {
	return agiFields(t, img, 0, "count")["count"] + agiFields(t, img, 1, "count")["count"]
}

// TestInodeTreesAgainstKernel: on a volume whose inode B+trees have
// two levels, files are created until AG 0's finobt has lost every
// record (shrinking to one level) and the inobts gained new chunks, then
// a file of every chunk is unlinked (the finobt split into two levels
// again), through offvm and through the kernel on a copy; xfs_db sees
// the levels, xfs_repair -n is clean and the kernel's mounts agree.
func TestInodeTreesAgainstKernel(t *testing.T) {
	img, later := inobtImage(t)
	for ag, lv := range agiLevels(t, img) {
		if lv[0] < 2 || lv[1] < 2 {
			t.Fatalf("AG %d: the kernel's inobt/finobt have %d/%d levels, want 2", ag, lv[0], lv[1])
		}
	}
	count := inodeCount(t, img)
	ref := copyFile(t, img)
	mnt := mountLoop(t, ref)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	nd := (int(be.Uint64(f.w.sb[sbIfree:])) + 3*inosPerChunk) / 60 // every free inode and three chunks more
	for d := 0; d <= nd; d++ {
		sub := fmt.Sprintf("new%02d", d)
		dir, err := f.Mkdir(f.Root(), sub, 0o755)
		if err != nil {
			t.Fatalf("mkdir %s: %v", sub, err)
		}
		os.Mkdir(filepath.Join(mnt, sub), 0o755)
		for i := 0; i < 60; i++ {
			name := fmt.Sprintf("n%02d", i)
			a, err := f.Create(dir.Ino, name, 0o644)
			if err != nil {
				t.Fatalf("create %s/%s: %v", sub, name, err)
			}
			if _, err := f.WriteAt(a.Ino, []byte(sub+name), 0); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(mnt, sub, name), []byte(sub+name), 0o644)
		}
	}
	if lv := agiLevels(t, img)[0]; lv[0] < 2 || lv[1] != 1 {
		t.Errorf("after the creates AG 0's inobt/finobt have %d/%d levels, want 2/1", lv[0], lv[1])
	}
	if c := inodeCount(t, img); c < count+3*inosPerChunk {
		t.Errorf("the AGs hold %d inodes, %d before: fewer than three new chunks", c, count)
	}
	for _, p := range later {
		dir, name := filepath.Split(p)
		if err := f.Unlink(lookupPath(t, f, dir).Ino, name); err != nil {
			t.Fatalf("unlink %s: %v", p, err)
		}
		os.Remove(filepath.Join(mnt, p))
	}
	for ag, lv := range agiLevels(t, img) {
		if lv[0] < 2 || lv[1] < 2 {
			t.Errorf("after the unlinks AG %d's inobt/finobt have %d/%d levels, want 2/2", ag, lv[0], lv[1])
		}
	}
	testutil.Run(t, "umount", mnt)
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
}

// TestInodeTreesFailure fails each write of the inode-allocating
// operations on a volume whose inode B+trees have two levels (see
// TestWriteFailure): the operation returns EIO and the image is byte
// for byte what it was, which xfs_repair -n finds clean.
func TestInodeTreesFailure(t *testing.T) {
	pristine, _ := inobtImage(t)
	failExact(t, pristine, inobtFailOps)
}

var inobtFailOps = []failOp{
	// every chunk has one or two free inodes: the record leaves the finobt
	{"create in a two-level inobt", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "d005").Ino, "new", 0o644)
		return err
	}},
	{"unlink in a two-level inobt", unlinkInFullChunk}, // a record joins the finobt
	{"create with a new chunk in a two-level inobt", func(t *testing.T, f *FS) error {
		_, err := f.Create(f.Root(), "first-of-a-chunk", 0o644)
		return err
	}},
	{"create shrinking the finobt to one level", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "shrink").Ino, "shrinks-the-finobt", 0o644)
		return err
	}},
	{"unlink splitting the finobt", unlinkInFullChunk},
}

func init() {
	failPrep["create with a new chunk in a two-level inobt"] = func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		useFreeInodes(t, f)
		return nil
	}
	failPrep["create shrinking the finobt to one level"] = fillFinobt
	failPrep["unlink splitting the finobt"] = func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		fillFinobt(t, f, img)
		if _, err := f.Create(lookupPath(t, f, "shrink").Ino, "shrinks-the-finobt", 0o644); err != nil {
			t.Fatal(err)
		}
		if lv, n := finobtLevel(t, f), len(withFree(agInodesOf(t, f, 0).recs)); lv != 1 || n != f.leafMax(kindFino) {
			t.Fatalf("finobt of %d levels, %d records: not one full leaf", lv, n)
		}
		return nil
	}
}

func agInodesOf(t *testing.T, f *FS, ag uint32) *agInodes {
	t.Helper()
	a, err := f.newInodes(f.newSpace()).ag(ag)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// finobtLevel is AG 0's finobt levels as its AGI says.
func finobtLevel(t *testing.T, f *FS) int {
	return int(be.Uint32(agInodesOf(t, f, 0).agi[agiFreeLevel:]))
}

// fillFinobt creates files in a new directory of AG 0 until one more
// would shrink AG 0's finobt to one level.
func fillFinobt(t *testing.T, f *FS, img string) map[string]testutil.Node {
	t.Helper()
	d, err := f.Mkdir(f.Root(), "shrink", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if ag := uint64(d.Ino) >> (f.sb.agBlkLog + f.sb.inoPBLog); ag != 0 {
		t.Fatalf("shrink is in AG %d", ag)
	}
	fillUntilChange(t, f, "shrink", "shrinks-the-finobt", finobtLevel)
	return nil
}

// unlinkInFullChunk unlinks the first kernel-made file whose inode is in
// a chunk of AG 0 with no free inode.
func unlinkInFullChunk(t *testing.T, f *FS) error {
	dir, name := fileInFullChunk(t, f)
	return f.Unlink(lookupPath(t, f, dir).Ino, name)
}

// fileInFullChunk is the first kernel-made file whose inode is in a
// chunk of AG 0 with no free inode.
func fileInFullChunk(t *testing.T, f *FS) (string, string) {
	t.Helper()
	a := agInodesOf(t, f, 0)
	for d := 0; d < 170; d++ {
		dir := fmt.Sprintf("d%03d", d)
		ents, err := f.ReadDir(lookupPath(t, f, dir).Ino)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			ino := uint64(e.Ino)
			if ino>>(f.sb.agBlkLog+f.sb.inoPBLog) != 0 || e.Name == "." || e.Name == ".." {
				continue
			}
			for _, r := range a.recs {
				if uint32(ino)-r.start < inosPerChunk && r.freecount == 0 {
					return dir, e.Name
				}
			}
		}
	}
	t.Fatal("no file in a full chunk of AG 0")
	return "", ""
}
