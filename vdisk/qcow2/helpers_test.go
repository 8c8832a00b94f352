package qcow2

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

// openChain opens any image of a chain: qcow2 by its magic, raw otherwise,
// following backing files the way vdisk/detect will.
func openChain(path string) (vdisk.Disk, error) {
	f, err := vdisk.OpenOSFile(path, false)
	if err != nil {
		return nil, err
	}
	if Match(f) {
		d, err := Open(f, vdisk.Options{OpenParent: openChain})
		if err != nil {
			f.Close()
		}
		return d, err
	}
	return raw.Open(f, vdisk.Options{})
}

// openImage opens a qcow2 image of the test, following its chain.
func openImage(t *testing.T, path string, writable bool) *Disk {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, writable)
	if err != nil {
		t.Fatal(err)
	}
	if !Match(f) {
		t.Fatalf("%s: Match is false", path)
	}
	d, err := Open(f, vdisk.Options{Writable: writable, OpenParent: openChain})
	if err != nil {
		f.Close()
		t.Fatalf("Open %s: %v", path, err)
	}
	return d.(*Disk)
}

// makeRaw writes a sparse raw disk of size bytes holding random data at
// scattered offsets (and at both ends), and returns its path.
func makeRaw(t *testing.T, dir string, size int64, seed int64) string {
	t.Helper()
	path := filepath.Join(dir, "disk.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(seed))
	put := func(off int64, n int) {
		b := make([]byte, n)
		r.Read(b)
		if r.Intn(4) == 0 { // compressible text, for -c
			copy(b, bytes.Repeat([]byte("offvm qcow2 test "), n/17+1))
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 8192)
	// The first clusters compress, whatever the cluster size.
	if _, err := f.WriteAt(bytes.Repeat([]byte("offvm boot sector "), 8192/18), 0); err != nil {
		t.Fatal(err)
	}
	put(size-5000, 5000)
	for i := 0; i < 40; i++ {
		n := 1 + r.Intn(300<<10)
		put(r.Int63n(size-int64(n)), n)
	}
	return path
}

// toRaw converts any image to raw with qemu-img: the reference content.
func toRaw(t *testing.T, img, out string) {
	t.Helper()
	testutil.Run(t, "qemu-img", "convert", "-O", "raw", img, out)
}

// compareAll reads the whole disk through d, in pieces of odd sizes at odd
// offsets, and compares it with the raw file.
func compareAll(t *testing.T, d vdisk.Disk, rawPath string) {
	t.Helper()
	compareEvery(t, d, rawPath, 1)
}

// compareEvery compares every step-th piece of the disk (and the last).
func compareEvery(t *testing.T, d vdisk.Disk, rawPath string, step int64) {
	t.Helper()
	want, err := os.Open(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	st, _ := want.Stat()
	if st.Size() != d.Size() {
		t.Fatalf("size %d, qemu-img says %d", d.Size(), st.Size())
	}
	const chunk = 4<<20 + 4096 + 512 + 3
	got, exp := make([]byte, chunk), make([]byte, chunk)
	for i, off := int64(0), int64(0); off < d.Size(); i, off = i+1, off+chunk {
		n := min(chunk, d.Size()-off)
		if i%step != 0 && off+n < d.Size() {
			continue
		}
		if _, err := d.ReadAt(got[:n], off); err != nil && !(err.Error() == "EOF" && off+n == d.Size()) {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		if _, err := want.ReadAt(exp[:n], off); err != nil && err.Error() != "EOF" {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:n], exp[:n]) {
			i := testutil.FirstDiff(got[:n], exp[:n])
			t.Fatalf("content differs at guest offset %d", off+int64(i))
		}
	}
}

// write is one write of the pattern: n bytes at off, zeros when zero.
type write struct {
	off  int64
	n    int
	zero bool
}

// pattern is a set of scattered writes for a disk of size with clusters
// of cs bytes: both ends, across cluster boundaries, whole clusters, zeros
// over data and into holes, a long run, and random ones.
func pattern(size, cs int64, big int, seed int64) []write {
	r := rand.New(rand.NewSource(seed))
	ws := []write{
		{0, 512, false},
		{size - 512, 512, false},
		{cs - 100, 300, false},
		{3*cs + 17, int(2*cs + 777), false},
		{5 * cs, int(cs), false},
		{9 * cs, int(cs), true},
		{size/2 + 12345, 7000, false},
		{size/2 + 40000, 3000, true},
		{size / 3, big, false},
	}
	for i := 0; i < 30; i++ {
		n := 1 + r.Intn(int(min(3*cs, 200<<10, size/2)))
		ws = append(ws, write{r.Int63n(size - int64(n)), n, r.Intn(5) == 0})
	}
	// Small disks keep the writes that fit.
	fit := ws[:0]
	for _, w := range ws {
		if w.off >= 0 && w.off+int64(w.n) <= size {
			fit = append(fit, w)
		}
	}
	return fit
}

// applyWrites writes the pattern to the disk and to the raw reference.
func applyWrites(t *testing.T, d vdisk.Disk, rawPath string, ws []write, seed int64) {
	t.Helper()
	rf, err := os.OpenFile(rawPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r := rand.New(rand.NewSource(seed))
	for _, w := range ws {
		b := make([]byte, w.n)
		if !w.zero {
			r.Read(b)
		}
		if n, err := d.WriteAt(b, w.off); err != nil || n != w.n {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", w.n, w.off, n, err)
		}
		if _, err := rf.WriteAt(b, w.off); err != nil {
			t.Fatal(err)
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%dM", n) }
