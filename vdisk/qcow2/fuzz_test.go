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
		buf := make([]byte, 64<<10)
		for _, off := range []int64{0, size / 2, size - 1000, size - int64(len(buf))} {
			if off >= 0 && off < size {
				d.ReadAt(buf, off)
			}
		}
		if d.Info().ReadOnly != "" || size < 4096 {
			d.Close()
			return
		}
		pat := bytes.Repeat([]byte("fuzzwrite"), 200) // 1800 bytes
		offs := []int64{0, size/2 - 100, size - int64(len(pat))}
		ok := true
		for _, off := range offs {
			if _, err := d.WriteAt(pat, off); err != nil {
				ok = false
				break
			}
		}
		if err := d.Close(); err != nil || !ok {
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
