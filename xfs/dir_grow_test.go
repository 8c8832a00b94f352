package xfs

import (
	"fmt"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// overlayDev keeps writes in memory over a base device: a dry run of
// an operation that leaves the base as it was.
type overlayDev struct {
	volume.Device
	writes []pending
}

func (d *overlayDev) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.Device.ReadAt(p, off)
	for _, w := range d.writes {
		lo, hi := max(off, w.off), min(off+int64(len(p)), w.off+int64(len(w.b)))
		if lo < hi {
			copy(p[lo-off:hi-off], w.b[lo-w.off:hi-w.off])
		}
	}
	return n, err
}

func (d *overlayDev) WriteAt(p []byte, off int64) (int, error) {
	d.writes = append(d.writes, pending{off, append([]byte(nil), p...)})
	return len(p), nil
}

// aboveBlocks is how many blocks directory p has at and above
// leafOffset (0: short-form or block form).
func aboveBlocks(t *testing.T, f *FS, p string) int {
	t.Helper()
	r, err := f.loadRaw(uint64(lookupPath(t, f, p).Ino))
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.loadSF(r)
	if err != nil {
		t.Fatal(err)
	}
	if d.leaf == nil {
		return 0
	}
	return len(d.leaf.above)
}

// fillUntil creates files named like name in directory p until creating
// name itself would change how many blocks the directory has above
// leafOffset (block to leaf, leaf to node), tried as a dry run each time.
func fillUntil(t *testing.T, f *FS, p, name string) map[string]testutil.Node {
	t.Helper()
	fillUntilChange(t, f, p, name, func(t *testing.T, g *FS) int { return aboveBlocks(t, g, p) })
	return testutil.EngineTree(t, f, true)
}

// fillUntilChange creates files named like name in directory p until
// creating name itself would change what measure says, tried as a dry
// run each time.
func fillUntilChange(t *testing.T, f *FS, p, name string, measure func(*testing.T, *FS) int) {
	t.Helper()
	dir := lookupPath(t, f, p).Ino
	for i := 0; i < 5000; i++ {
		o := &overlayDev{Device: f.dev}
		g, err := OpenWritable(o)
		if err != nil {
			t.Fatal(err)
		}
		before := measure(t, g)
		if _, err := g.Create(dir, name, 0o644); err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if measure(t, g) != before {
			return
		}
		pad := fmt.Sprintf("%0*d", len(name), i)
		if _, err := f.Create(dir, pad, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s never changes", p)
}
