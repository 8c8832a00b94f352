package guestdiff

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/ntfs"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/volume"
)

// memDisk is a virtual disk in memory: the image the commits apply to.
type memDisk struct{ b []byte }

func (d *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(d.b)) {
		return 0, fmt.Errorf("read past the end")
	}
	return copy(p, d.b[off:]), nil
}
func (d *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(d.b[off:], p), nil }
func (d *memDisk) Size() int64                              { return int64(len(d.b)) }
func (d *memDisk) Info() vdisk.Info                         { return vdisk.Info{Format: "raw"} }
func (d *memDisk) Flush() error                             { return nil }
func (d *memDisk) Close() error                             { return nil }

// window is a partition of a disk as an engine's device.
type window struct {
	d           vdisk.Disk
	start, size int64
}

func (w window) ReadAt(p []byte, off int64) (int, error)  { return w.d.ReadAt(p, w.start+off) }
func (w window) WriteAt(p []byte, off int64) (int, error) { return w.d.WriteAt(p, w.start+off) }
func (w window) Size() int64                              { return w.size }

// makeNTFSDisk is a disk with an MBR whose one partition starts at
// sector start and holds a volume mkntfs made with that cluster size.
func makeNTFSDisk(t *testing.T, start int64, cluster int) (*memDisk, int64, int64) {
	t.Helper()
	for _, tool := range []string{"mkntfs", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", tool)
		}
	}
	dir := t.TempDir()
	const diskSize = 48 << 20
	disk, part := filepath.Join(dir, "disk.img"), filepath.Join(dir, "part.img")
	off, size := start*512, int64(diskSize)-start*512-(1<<20)
	if err := os.WriteFile(disk, make([]byte, diskSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	sf := exec.Command("sfdisk", "-q", disk)
	sf.Stdin = strings.NewReader(fmt.Sprintf("label: dos\nstart=%d, size=%d, type=7\n", start, size/512))
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	if out, err := exec.Command("mkntfs", "-F", "-Q", "-q", "-c", fmt.Sprint(cluster), part).CombinedOutput(); err != nil {
		t.Fatalf("mkntfs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[off:], p)
	return &memDisk{b}, off, size
}

// workload makes random changes of every kind the engine has through
// the volume interfaces; it returns how many succeeded.
type workload struct {
	fs  volume.FS
	rng *rand.Rand
	ok  int
}

func (w *workload) name() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	n := 1 + w.rng.IntN(12)
	if w.rng.IntN(20) == 0 {
		n = 200 + w.rng.IntN(50) // long names move $FILE_NAMEs to extension records
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[w.rng.IntN(len(letters))]
	}
	return string(b)
}

// pick walks down from the root to a random directory, and returns it
// with one random entry of it (Name "" when it is empty).
func (w *workload) pick() (volume.Ino, volume.DirEntry) {
	dir := w.fs.Root()
	for depth := 0; depth < 6; depth++ {
		es, err := w.fs.ReadDir(dir)
		if err != nil || len(es) == 0 {
			return dir, volume.DirEntry{}
		}
		e := es[w.rng.IntN(len(es))]
		if e.Mode.IsDir() && w.rng.IntN(3) > 0 {
			dir = e.Ino
			continue
		}
		return dir, e
	}
	return dir, volume.DirEntry{}
}

func (w *workload) pickDir() volume.Ino {
	dir, e := w.pick()
	if e.Mode.IsDir() && w.rng.IntN(2) == 0 {
		return e.Ino
	}
	return dir
}

func (w *workload) data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(w.rng.IntN(4)) // compressible, not all zeros
	}
	return b
}

// step makes one random change; errors (a name taken, a directory not
// empty, a rename into itself) are what a user would meet too.
func (w *workload) step() {
	wr := w.fs.(volume.Writer)
	dir, e := w.pick()
	var err error
	switch op := w.rng.IntN(14); {
	case op < 3:
		var a volume.Attr
		if a, err = wr.Create(dir, w.name(), 0o644); err == nil {
			_, err = wr.WriteAt(a.Ino, w.data(w.rng.IntN(3)*w.rng.IntN(9000)), 0)
		}
	case op == 3:
		_, err = wr.Mkdir(dir, w.name(), 0o755)
	case e.Name == "":
		return
	case op == 4 && !e.Mode.IsDir():
		a, _ := w.fs.GetAttr(e.Ino)
		_, err = wr.WriteAt(e.Ino, w.data(1+w.rng.IntN(5000)), w.rng.Int64N(a.Size+1))
	case op == 5 && !e.Mode.IsDir():
		// the same bytes again: the mtime moves, the content does not
		a, _ := w.fs.GetAttr(e.Ino)
		buf := make([]byte, a.Size)
		if _, err = w.fs.ReadAt(e.Ino, buf, 0); err == nil || a.Size > 0 {
			_, err = wr.WriteAt(e.Ino, buf, 0)
		}
	case op == 6 && !e.Mode.IsDir():
		err = wr.Truncate(e.Ino, w.rng.Int64N(20000))
	case op == 7:
		name := e.Name
		if w.rng.IntN(2) == 0 {
			name = w.name()
		}
		err = wr.Rename(dir, e.Name, w.pickDir(), name)
	case op == 8 && !e.Mode.IsDir():
		_, err = w.fs.(volume.Linker).Link(e.Ino, w.pickDir(), w.name())
	case op == 9 && !e.Mode.IsDir():
		err = wr.Unlink(dir, e.Name)
	case op == 9:
		err = wr.Rmdir(dir, e.Name)
	case op == 10:
		t := time.Date(2020+w.rng.IntN(6), 1, 1, 0, 0, w.rng.IntN(1e6), 0, time.UTC)
		err = w.fs.(volume.Timer).SetTimes(e.Ino, nil, &t)
	case op == 11:
		attrib := make([]byte, 4)
		binary.LittleEndian.PutUint32(attrib, uint32(w.rng.IntN(2))) // read-only or not: chmod
		err = w.fs.(volume.Xattrer).SetXattr(e.Ino, "system.ntfs_attrib", attrib)
	case op == 12:
		x := w.fs.(volume.Xattrer)
		if w.rng.IntN(3) == 0 {
			err = x.RemoveXattr(e.Ino, "user.ads")
		} else {
			err = x.SetXattr(e.Ino, "user.ads", w.data(w.rng.IntN(3000)))
		}
	default:
		_, err = w.fs.(volume.Symlinker).Symlink(dir, w.name(), "target/"+w.name())
	}
	if err == nil {
		w.ok++
	}
}

// summaries compares the disk before and after the overlay's changes
// twice, by the whole walk (the oracle) and pruned, in parallel, with
// readers of both sides running beside them.
func summaries(t *testing.T, base vdisk.Disk, o *txn.Overlay) (full, pruned []Change, plim *limits) {
	t.Helper()
	var changed []txn.Extent
	if err := o.Changes(func(off int64, p []byte) error {
		changed = append(changed, txn.Extent{Off: off, Len: int64(len(p))})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a, err := mount.OpenDisk("test.img", base)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := mount.OpenDisk("test.img", o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	plim = &limits{sameVolume: true, changed: changed, changesKnown: true}
	var wg sync.WaitGroup
	var errFull, errPruned error
	wg.Go(func() { full, errFull = compare(a, b, &limits{sameVolume: true}) })
	wg.Go(func() { pruned, errPruned = compare(a, b, plim) })
	for _, im := range []*mount.Image{a, b} {
		wg.Go(func() {
			for _, v := range im.Volumes() {
				if v.FS != nil {
					w := &workload{fs: v.FS, rng: rand.New(rand.NewPCG(1, 2))}
					for range 50 {
						w.pick()
					}
				}
			}
		})
	}
	wg.Wait()
	if errFull != nil || errPruned != nil {
		t.Fatalf("full walk: %v; pruned: %v", errFull, errPruned)
	}
	return full, pruned, plim
}

// TestPrunedEqualsFullNTFS runs random workloads on NTFS volumes, one
// commit after another, and checks that the commit's summary from the
// changed bytes is the whole walk's, change for change.
func TestPrunedEqualsFullNTFS(t *testing.T) {
	cases := []struct {
		name           string
		start, cluster int64
		seed           uint64
	}{
		{"aligned-4k-clusters", 2048, 4096, 1},
		{"odd-start-1k-clusters", 2055, 1024, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disk, off, size := makeNTFSDisk(t, c.start, int(c.cluster))
			v, err := ntfs.Open(window{disk, off, size}, ntfs.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// a directory big enough for an INDX tree of several levels,
			// nested directories whose records lie far apart in $MFT (an
			// overlay block holds four records: neighbours are touched
			// together), a file with 8 hard links with long names
			big, err := v.Mkdir(v.Root(), "big", 0o755)
			if err != nil {
				t.Fatal(err)
			}
			nest := v.Root()
			for i := range 700 {
				if _, err := v.Create(big.Ino, fmt.Sprintf("file-%04d-%s", i, strings.Repeat("x", i%40)), 0o644); err != nil {
					t.Fatal(err)
				}
				if i%100 == 99 {
					a, err := v.Mkdir(nest, fmt.Sprintf("level%d", i/100), 0o755)
					if err != nil {
						t.Fatal(err)
					}
					nest = a.Ino
				}
			}
			f, err := v.Create(nest, "linked", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 8 {
				if _, err := v.Link(f.Ino, big.Ino, fmt.Sprintf("link%d-%s", i, strings.Repeat("L", 200))); err != nil {
					t.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(c.seed, 7))
			var changes, skipped, rounds int
			for round := range 12 {
				o, err := txn.NewOverlay(disk, t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				w, err := ntfs.Open(window{o, off, size}, ntfs.Options{})
				if err != nil {
					t.Fatal(err)
				}
				wl := &workload{fs: w, rng: rng}
				n := 1 + rng.IntN(60)
				if round == 0 {
					n = 0 // a commit that changes nothing
				}
				for range n {
					wl.step()
				}
				full, pruned, lim := summaries(t, disk, o)
				if lim.pruned != 1 {
					t.Fatalf("round %d: %d volumes pruned, want 1 (the summary fell back to the whole walk)", round, lim.pruned)
				}
				if !reflect.DeepEqual(full, pruned) {
					t.Fatalf("round %d (%d of %d ops made): pruned summary differs from the whole walk\nfull:\n%s\npruned:\n%s", round, wl.ok, n, listing(full), listing(pruned))
				}
				changes += len(full)
				skipped += lim.skipped
				rounds++
				if err := o.Changes(func(off int64, p []byte) error { _, err := disk.WriteAt(p, off); return err }); err != nil {
					t.Fatal(err)
				}
				o.Close()
			}
			if changes == 0 || skipped == 0 {
				t.Fatalf("%d rounds: %d changes, %d names skipped: the workload proved nothing", rounds, changes, skipped)
			}
			t.Logf("%d rounds: %d changes found both ways, %d unchanged names skipped by the pruned walk", rounds, changes, skipped)
		})
	}
}

func listing(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	return b.String()
}
