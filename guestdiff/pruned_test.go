package guestdiff

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/fat"
	"github.com/offvm/offvm/internal/fswork"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/ntfs"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vdisk"
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
					w := fswork.New(v.FS, rand.New(rand.NewPCG(1, 2)))
					for range 50 {
						w.Pick()
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
			var changes, skipped, narrowed, rounds int
			for round := range 12 {
				o, err := txn.NewOverlay(disk, t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				w, err := ntfs.Open(window{o, off, size}, ntfs.Options{})
				if err != nil {
					t.Fatal(err)
				}
				wl := fswork.New(w, rng)
				n := 1 + rng.IntN(60)
				if round == 0 {
					n = 0 // a commit that changes nothing
				}
				for range n {
					wl.Step()
				}
				full, pruned, lim := summaries(t, disk, o)
				if lim.pruned != 1 {
					t.Fatalf("round %d: %d volumes pruned, want 1 (the summary fell back to the whole walk)", round, lim.pruned)
				}
				if !reflect.DeepEqual(full, pruned) {
					t.Fatalf("round %d (%d of %d ops made): pruned summary differs from the whole walk\nfull:\n%s\npruned:\n%s", round, wl.OK, n, listing(full), listing(pruned))
				}
				changes += len(full)
				skipped += lim.skipped
				narrowed += lim.narrowed
				rounds++
				if err := o.Changes(func(off int64, p []byte) error { _, err := disk.WriteAt(p, off); return err }); err != nil {
					t.Fatal(err)
				}
				o.Close()
			}
			if changes == 0 || skipped == 0 || narrowed == 0 {
				t.Fatalf("%d rounds: %d changes, %d names skipped, %d directories listed narrowed: the workload proved nothing", rounds, changes, skipped, narrowed)
			}
			t.Logf("%d rounds: %d changes found both ways, %d unchanged names skipped by the pruned walk, %d directory listings narrowed", rounds, changes, skipped, narrowed)
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

// TestPruneFallsBack: what cannot be mapped is walked whole. A FAT
// volume (no ChangeFinder) and a file system behind a layer (its device
// is not a window of the disk) get no pruning, and the summary is the
// whole walk's.
func TestPruneFallsBack(t *testing.T) {
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Skip("mkfs.vfat not installed (scripts/deps.sh installs it)")
	}
	img := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	disk := &memDisk{b}
	o, err := txn.NewOverlay(disk, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	after, err := mount.OpenDisk("fat.img", o)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	vs := after.Volumes()
	if len(vs) != 1 || vs[0].FS == nil {
		t.Fatalf("volumes of a bare FAT: %+v", vs)
	}
	w, err := fat.Open(window{o, 0, o.Size()}, fat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create(w.Root(), "new.txt", 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pruneVolume(vs[0], vs[0], nil); err == nil || !strings.Contains(err.Error(), "cannot map") {
		t.Errorf("FAT: pruneVolume says %v, want that it cannot map bytes to files", err)
	}
	layered := &mount.Volume{Partition: vs[0].Partition, FS: vs[0].FS, Dev: window{o, 0, o.Size()}}
	if _, err := pruneVolume(layered, layered, nil); err == nil || !strings.Contains(err.Error(), "not a plain partition") {
		t.Errorf("behind a layer: pruneVolume says %v, want that it is not a plain partition", err)
	}
	full, pruned, lim := summaries(t, disk, o)
	if lim.pruned != 0 || !reflect.DeepEqual(full, pruned) || len(full) != 1 || full[0].Op != "+" {
		t.Fatalf("FAT: %d volumes pruned, full %v, pruned %v; want none pruned and one + from both", lim.pruned, full, pruned)
	}
}
