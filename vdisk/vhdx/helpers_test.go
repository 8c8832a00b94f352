package vhdx

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

// randomBytes fills n bytes quickly (tests run under -race, where a
// per-byte generator is slow): random 64 KiB tiles from random starts.
func randomBytes(r *rand.Rand, n int64) []byte {
	tile := make([]byte, 64*kib)
	r.Read(tile)
	b := make([]byte, n)
	for i := int64(0); i < n; {
		i += int64(copy(b[i:], tile[r.Intn(len(tile)-512):]))
	}
	return b
}

// makeRaw writes a sparse raw disk of size bytes with random data at
// scattered offsets: the first and last sectors, around 1 MiB and 32 MiB
// block edges, and a few random places.
func makeRaw(t *testing.T, path string, size int64, seed int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(seed))
	offs := []int64{0, size - 512, mib - 4096, 32*mib - 70000, size / 2}
	for range 6 {
		offs = append(offs, r.Int63n(size/512-256)*512)
	}
	for _, off := range offs {
		if off < 0 || off >= size {
			continue
		}
		n := min(int64(64*kib+r.Intn(200*kib)), size-off)
		buf := randomBytes(r, n)
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
}

func qemuImg(t testing.TB, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	return testutil.Run(t, "qemu-img", args...)
}

func openPath(t testing.TB, path string, writable bool, opts vdisk.Options) *Disk {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, writable)
	if err != nil {
		t.Fatal(err)
	}
	opts.Writable = writable
	d, err := open(f, opts)
	if err != nil {
		f.Close()
		t.Fatalf("open %s: %v", path, err)
	}
	return d
}

// parentOpener opens parents as VHDX (read-only), or raw otherwise.
func parentOpener() vdisk.Options {
	var o vdisk.Options
	o.OpenParent = func(path string) (vdisk.Disk, error) {
		f, err := vdisk.OpenOSFile(path, false)
		if err != nil {
			return nil, err
		}
		if Match(f) {
			return Open(f, vdisk.Options{OpenParent: o.OpenParent})
		}
		return raw.Open(f, vdisk.Options{})
	}
	return o
}

// readAll reads the whole disk in uneven chunks, so that runs start and
// end inside blocks and sectors.
func readAll(t testing.TB, d vdisk.Disk) []byte {
	t.Helper()
	out := make([]byte, d.Size())
	step := []int{3*mib + 517, 4096, 1, 65536 + 3}
	for off, i := int64(0), 0; off < d.Size(); i++ {
		n := min(int64(step[i%len(step)]), d.Size()-off)
		if _, err := d.ReadAt(out[off:off+n], off); err != nil && err != io.EOF {
			t.Fatalf("read at %d: %v", off, err)
		}
		off += n
	}
	return out
}

func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileHash(t testing.TB, path string) [32]byte { return sha256.Sum256(fileBytes(t, path)) }

// sameBytes reports the first difference, not megabytes of hex.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: first difference at byte %d (got %#x, want %#x)", what, i, got[i], want[i])
			}
		}
	}
}

// aWrite is one write of the pattern, applied to the image and to a raw
// twin.
type aWrite struct {
	off  int64
	data []byte
}

// writePattern returns writes that hit the first and last sectors, block
// and sector edges, unallocated space, an unaligned stretch, zeros, and a
// run across several blocks.
func writePattern(size, bs int64, seed int64) []aWrite {
	r := rand.New(rand.NewSource(seed))
	rnd := func(n int64) []byte { return randomBytes(r, n) }
	ws := []aWrite{
		{0, rnd(512)},
		{size - 512, rnd(512)},
		{bs - 3000, rnd(7000)},       // across the first block edge
		{size/2 + 12345, rnd(100)},   // unaligned, inside a sector
		{size/bs/2*bs + 511, rnd(2)}, // straddles a sector edge
		{size - min(3*bs, size/2) + 777, rnd(min(2*bs, size/3))}, // several blocks
		{size / 3, make([]byte, 64*kib)},                         // zeros
		{size/4 - 4096, rnd(4096)},
	}
	return ws
}

func applyWrites(t *testing.T, d vdisk.Disk, rawPath string, ws []aWrite) {
	t.Helper()
	rf, err := os.OpenFile(rawPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	for _, w := range ws {
		if _, err := d.WriteAt(w.data, w.off); err != nil {
			t.Fatalf("write %d bytes at %d: %v", len(w.data), w.off, err)
		}
		if _, err := rf.WriteAt(w.data, w.off); err != nil {
			t.Fatal(err)
		}
	}
}

func join(dir, name string) string { return filepath.Join(dir, name) }
