package qcow2

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

// FuzzOpen opens arbitrary bytes as a qcow2 image, reads a few blocks and,
// when the image is writable, writes a few, flushes, and reopens the
// result: nothing may panic, and what was written must read back.
func FuzzOpen(f *testing.F) {
	// Seeds are small images qemu-img made (testdata/fuzz/FuzzOpen); their
	// backing file, when they have one, is testdata/fuzzbase.raw.
	name := filepath.Join("testdata", "fuzz.qcow2")
	parent := func(path string) (vdisk.Disk, error) {
		b := bytes.Repeat([]byte{0xba, 0x5e}, 32<<10)
		return raw.Open(vdisk.NewMemFile(path, b), vdisk.Options{})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mf := vdisk.NewMemFile(name, data)
		d, err := Open(mf, vdisk.Options{Writable: true, OpenParent: parent})
		if err != nil {
			return
		}
		size := d.Size()
		// the same bytes opened read-only (L2 tables read by slices) read
		// the same as through whole tables
		ro, roErr := Open(vdisk.NewMemFile(name, bytes.Clone(data)), vdisk.Options{OpenParent: parent})
		if roErr == nil {
			defer ro.Close()
		}
		buf, rbuf := make([]byte, 64<<10), make([]byte, 64<<10)
		for _, off := range []int64{0, size / 2, size - 1000, size - int64(len(buf))} {
			if off >= 0 && off < size {
				n, err := d.ReadAt(buf, off)
				if roErr != nil {
					continue
				}
				rn, rerr := ro.ReadAt(rbuf, off)
				if (err == nil) != (rerr == nil) || n != rn || !bytes.Equal(buf[:n], rbuf[:rn]) {
					t.Fatalf("read at %d: %d bytes (%v) whole, %d bytes (%v) by slices, or different bytes", off, n, err, rn, rerr)
				}
			}
		}
		if d.Info().ReadOnly != "" || size < 4096 {
			d.Close()
			return
		}
		// On an image whose refcounts disagree with its tables (qemu-img
		// check would report errors) a write may land on a cluster in use:
		// write anyway, for panics, but expect nothing back.
		consistent := consistent(d.(*Disk))
		pat := bytes.Repeat([]byte("fuzzwrite"), 200) // 1800 bytes
		offs := []int64{0, size/2 - 100, size - int64(len(pat))}
		ok := true
		for _, off := range offs {
			if _, err := d.WriteAt(pat, off); err != nil {
				ok = false
				break
			}
		}
		if err := d.Close(); err != nil || !ok || !consistent {
			return
		}
		d2, err := Open(vdisk.NewMemFile(name, mf.Bytes()), vdisk.Options{OpenParent: parent})
		if err != nil {
			t.Fatalf("reopening what we wrote: %v", err)
		}
		defer d2.Close()
		got := make([]byte, len(pat))
		for _, off := range offs {
			if _, err := d2.ReadAt(got, off); err != nil {
				t.Fatalf("reading back at %d: %v", off, err)
			}
			if !bytes.Equal(got, pat) {
				t.Fatalf("write at %d did not read back", off)
			}
		}
	})
}

// consistent reports whether every host cluster's refcount equals the
// references the image's tables make to it, as qemu-img check verifies.
// A dirty image needs only tables that stay inside the file: the first
// write rebuilds its refcounts.
func consistent(d *Disk) bool {
	defer func() { d.rc = nil }() // leave the first write its preparation
	if d.loadRefcounts() != nil {
		return false
	}
	counts, err := d.countClusters()
	if err != nil {
		return false
	}
	if d.h.IncompatibleFeatures&incDirty != 0 {
		return true
	}
	rt := d.rc.table
	for c := rt.off / d.cs; c < (rt.off+int64(len(rt.raw)))/d.cs; c++ {
		if c >= int64(len(counts)) {
			return false
		}
		counts[c]++
	}
	for i := int64(0); i < int64(len(rt.raw)/8); i++ {
		if off := int64(rt.u64(i) &^ 511); off != 0 {
			if d.checkCluster("refcount block", off) != nil {
				return false
			}
			counts[off/d.cs]++
		}
	}
	for c, want := range counts {
		if got, err := d.refcount(int64(c)); err != nil || got != want {
			return false
		}
	}
	return true
}
