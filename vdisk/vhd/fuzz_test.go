package vhd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

// fuzzDir holds the parent.vhd that differencing inputs' W2ru locators
// name, so that parent resolution (which looks at the host) succeeds and
// the differencing paths get fuzzed too.
func fuzzDir(f *testing.F) string {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "parent.vhd"), nil, 0o644); err != nil {
		f.Fatal(err)
	}
	return dir
}

// fuzzParent is the content of every fuzzed image's parent.
var fuzzParent = bytes.Repeat([]byte{0xa5, 0x5a}, 96<<10)

func FuzzOpen(f *testing.F) {
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOne(t, dir, b) })
}

// fuzzOne opens b, reads around, writes a little where it may, and checks
// the writes read back.
func fuzzOne(t testing.TB, dir string, b []byte) {
	{
		if len(b) > 4<<20 {
			return
		}
		mf := vdisk.NewMemFile(filepath.Join(dir, "child.vhd"), b)
		Match(mf)
		d, err := open(mf, vdisk.Options{Writable: true, OpenParent: func(p string) (vdisk.Disk, error) {
			return raw.Open(vdisk.NewMemFile(p, fuzzParent), vdisk.Options{})
		}})
		if err != nil {
			return
		}
		defer d.Close()
		size := d.Size()
		buf := make([]byte, 70000)
		for _, off := range []int64{0, size / 2, size - 1, size - 70000, 1 << 40} {
			d.ReadAt(buf, off)
		}
		// New blocks grow the file by a block each: keep that small.
		if d.blockSize > 1<<20 && d.ft.DiskType != diskFixed {
			return
		}
		for i, off := range []int64{0, size / 3, size - 777, 4097} {
			w := bytes.Repeat([]byte{byte(i + 1)}, 777)
			if off < 0 || off+int64(len(w)) > size {
				continue
			}
			if _, err := d.WriteAt(w, off); err != nil {
				continue
			}
			got := make([]byte, len(w))
			if _, err := d.ReadAt(got, off); err != nil {
				t.Fatalf("read back at %d: %v", off, err)
			}
			if !bytes.Equal(got, w) {
				t.Fatalf("write at %d does not read back", off)
			}
		}
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzOpen from qemu-made
// images when VHD_WRITE_SEEDS=1. Dynamic seeds get 4 KiB blocks (patched
// in, checksums redone) so an allocated block stays small.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VHD_WRITE_SEEDS") != "1" {
		t.Skip("set VHD_WRITE_SEEDS=1 to regenerate the fuzz seeds")
	}
	requireQemu(t)
	tmp := t.TempDir()
	out := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(out, 0o755)
	save := func(name string, b []byte) {
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(out, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Fixed, 16 KiB.
	fixed := filepath.Join(tmp, "fixed.vhd")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", fixed, "16K")
	testutil.Run(t, "qemu-io", "-f", "vpc", "-c", "write -P 0x77 512 1k", fixed)
	b, _ := os.ReadFile(fixed)
	save("fixed", b)

	small := func(name string) string {
		p := filepath.Join(tmp, name)
		testutil.Run(t, "qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic,force_size=on", p, "64K")
		b, _ := os.ReadFile(p)
		binary.BigEndian.PutUint32(b[512+28:], 16)   // entries
		binary.BigEndian.PutUint32(b[512+32:], 4096) // block size
		fixSums(b)
		os.WriteFile(p, b, 0o644)
		return p
	}
	dyn := small("dyn.vhd")
	b, _ = os.ReadFile(dyn)
	save("dynamic-empty", b)
	d := openPath(t, dyn, true)
	for _, off := range []int64{0, 5000, 65536 - 100} {
		d.WriteAt(bytes.Repeat([]byte{0x42}, 100), off)
	}
	d.Close()
	b, _ = os.ReadFile(dyn)
	save("dynamic-3-blocks", b)

	// Differencing on a raw parent named by W2ru .\parent.vhd.
	parent := filepath.Join(tmp, "parent.vhd")
	os.WriteFile(parent, bytes.Repeat([]byte{1}, 64<<10), 0o644)
	base := small("base.vhd")
	child := filepath.Join(tmp, "child.vhd")
	makeDifferencing(t, base, child, "parent.vhd", []locatorSpec{{"W2ru", `.\parent.vhd`}, {"MacX", "/nowhere/parent.vhd"}})
	cb, _ := os.ReadFile(child)
	// makeDifferencing took the 2 MiB block size from a fresh qemu image;
	// patch in 4 KiB blocks again.
	hb := cb[512 : 512+headerSize]
	binary.BigEndian.PutUint32(hb[28:], 16)
	binary.BigEndian.PutUint32(hb[32:], 4096)
	binary.BigEndian.PutUint32(hb[headerChecksumField:], checksum(hb, headerChecksumField))
	os.WriteFile(child, cb, 0o644)
	save("differencing-empty", cb)
	d = openPath(t, child, true)
	for _, off := range []int64{700, 9000, 65536 - 600} {
		d.WriteAt(bytes.Repeat([]byte{0x43}, 300), off)
	}
	d.Close()
	b, _ = os.ReadFile(child)
	save("differencing-3-blocks", b)
}
