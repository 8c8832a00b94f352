package vhd

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

const (
	MiB = 1 << 20
	// pyvhdi (python3-libvhdi) lives in Debian's python, not a pyenv one.
	debianPython = "/usr/bin/python3"
)

// makeRaw writes a sparse raw disk of size bytes with random data at
// scattered places, including the first and last sectors, and leaves
// some 2 MiB blocks wholly empty.
func makeRaw(t *testing.T, path string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	put := func(off int64, n int) {
		b := make([]byte, (n+7)&^7)
		for i := 0; i < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		if _, err := f.WriteAt(b[:n], off); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 4096)
	put(size-512, 512)
	put(2*MiB-1000, 3000) // across the first block boundary
	for i := 0; i < 24; i++ {
		off := r.Int64N(size / 2) // the upper half stays mostly empty
		if (off/(2*MiB))%3 == 2 { // and every third block in the lower
			continue
		}
		put(off, 1+r.IntN(96<<10))
	}
}

func requireQemu(t *testing.T) { testutil.RequireTool(t, "qemu-img", "qemu-utils") }

// requirePyvhdi skips unless libyal's libvhdi Python binding is there: it
// is the one reader at hand that follows a differencing chain.
func requirePyvhdi(t *testing.T) {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import pyvhdi").Run(); err != nil {
		t.Skipf("pyvhdi not importable by %s (apt-get install python3-libvhdi): %v", debianPython, err)
	}
}

// qemuConvert makes a VHD from a raw disk with qemu-img; force_size keeps
// qemu from rounding the size to a CHS geometry.
func qemuConvert(t *testing.T, rawPath, vhdPath, subformat string) {
	t.Helper()
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc",
		"-o", "subformat="+subformat+",force_size=on", rawPath, vhdPath)
}

func qemuVirtualSize(t *testing.T, path string) int64 {
	t.Helper()
	out := testutil.Run(t, "qemu-img", "info", "--output=json", "-f", "vpc", path)
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return info.VirtualSize
}

// qemuCompare asserts qemu-img sees the VHD holding what the raw file holds.
func qemuCompare(t *testing.T, vhdPath, rawPath string) {
	t.Helper()
	out := testutil.Run(t, "qemu-img", "compare", "-f", "vpc", "-F", "raw", vhdPath, rawPath)
	if !strings.Contains(out, "Images are identical") {
		t.Fatalf("qemu-img compare: %s", out)
	}
	conv := filepath.Join(t.TempDir(), "qemu.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", vhdPath, conv)
	testutil.Run(t, "cmp", conv, rawPath)
}

// vhdiRead reads the whole virtual disk with libvhdi, following the given
// parents (child's parent first), into a file, and returns its path.
func vhdiRead(t *testing.T, child string, parents ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vhdi.raw")
	script := `
import sys, pyvhdi
files = []
for p in sys.argv[2:]:
    f = pyvhdi.file(); f.open(p); files.append(f)
for i in range(len(files) - 1):
    files[i].set_parent(files[i + 1])
f = files[0]
size = f.get_media_size()
with open(sys.argv[1], "wb") as o:
    off = 0
    while off < size:
        n = min(4 << 20, size - off)
        o.write(f.read_buffer_at_offset(n, off))
        off += n
`
	args := append([]string{"-c", script, out, child}, parents...)
	testutil.Run(t, debianPython, args...)
	return out
}

// openPath opens a VHD from the host, parents through this package or raw.
func openPath(t *testing.T, path string, writable bool) *Disk {
	t.Helper()
	d, err := openWith(path, writable)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openWith(path string, writable bool) (*Disk, error) {
	f, err := vdisk.OpenOSFile(path, writable)
	if err != nil {
		return nil, err
	}
	d, err := open(f, vdisk.Options{Writable: writable, OpenParent: openAnyParent})
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// openAnyParent opens a parent as a VHD when it is one, else as raw.
func openAnyParent(path string) (vdisk.Disk, error) {
	f, err := vdisk.OpenOSFile(path, false)
	if err != nil {
		return nil, err
	}
	if Match(f) {
		d, err := Open(f, vdisk.Options{OpenParent: openAnyParent})
		if err != nil {
			f.Close()
		}
		return d, err
	}
	return raw.Open(f, vdisk.Options{})
}

// assertSame reads the whole disk through d in pieces of uneven sizes and
// compares it with the file at want.
func assertSame(t *testing.T, d vdisk.Disk, want string) {
	t.Helper()
	exp, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(exp)) != d.Size() {
		t.Fatalf("disk size %d, %s has %d bytes", d.Size(), want, len(exp))
	}
	got := make([]byte, len(exp))
	step := 3*MiB + 1536 + 17 // crosses block and sector boundaries
	for off := 0; off < len(got); off += step {
		end := min(off+step, len(got))
		if n, err := d.ReadAt(got[off:end], int64(off)); err != nil || n != end-off {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", end-off, off, n, err)
		}
	}
	if i := testutil.FirstDiff(got, exp); i >= 0 {
		t.Fatalf("disk differs from %s at byte %d (sector %d)", want, i, i/512)
	}
}

// write is one write of a test pattern: length n at off; off < 0 counts
// from the end of the disk. zero writes zeros.
type write struct {
	off  int64
	n    int
	zero bool
}

// pattern is a set of writes over a disk of 64 MiB with 2 MiB blocks:
// first and last sector, across block boundaries, unaligned, inside one
// sector, into empty blocks, and zeros into an empty block.
var pattern = []write{
	{off: 0, n: 512},
	{off: -512, n: 512},
	{off: 2*MiB - 1024, n: 4096},
	{off: 4*MiB + 100, n: 777},
	{off: 6*MiB + 1000, n: 20},
	{off: 9*MiB - 3, n: 3*MiB + 11},
	{off: 40 * MiB, n: 64 << 10},
	{off: 50*MiB + 513, n: 1},
	{off: 56 * MiB, n: 2 * MiB, zero: true},
	{off: 44*MiB + 7, n: 100000},
	{off: 44*MiB + 50000, n: 1000},
}

// diffPattern is pattern for a differencing child, with every write
// ending on a 4 KiB boundary: libvhdi 20210425, the oracle for chains,
// decodes a bitmap byte wrongly when a set bit is followed by a clear one
// (it takes the clear ones as set too), so the test keeps bitmap bytes of
// the form 0...01...1. Unaligned starts still merge parent data into the
// first sector; the pair at 30 MiB merges a partial last sector and then
// fills the rest of its 4 KiB.
var diffPattern = []write{
	{off: 0, n: 4096},
	{off: -4096, n: 4096},
	{off: 2*MiB - 1024, n: 4096 + 1024},
	{off: 4*MiB + 100, n: 8192 - 100},
	{off: 6*MiB + 1000, n: 8192 - 1000},
	{off: 9*MiB - 3, n: 3*MiB + 3},
	{off: 40 * MiB, n: 64 << 10},
	{off: 50*MiB + 513, n: 4096 - 513},
	{off: 56 * MiB, n: 2 * MiB, zero: true},
	{off: 44*MiB + 7, n: 102400 - 7},
	{off: 44*MiB + 50000, n: 53248 - 50000},
	{off: 30*MiB + 100, n: 600},
	{off: 30*MiB + 1024, n: 3072},
}

// applyPattern writes a pattern to d and to the raw file at mirror.
func applyPattern(t *testing.T, d vdisk.Disk, mirror string, pattern []write, seed uint64) {
	t.Helper()
	m, err := os.OpenFile(mirror, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewPCG(seed, 11))
	for _, w := range pattern {
		off := w.off
		if off < 0 {
			off += d.Size()
		}
		b := make([]byte, w.n)
		if !w.zero {
			for i := range b {
				b[i] = byte(r.Uint32() | 1)
			}
		}
		if n, err := d.WriteAt(b, off); err != nil || n != len(b) {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(b), off, n, err)
		}
		if _, err := m.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

func mustErr(t *testing.T, err error, target error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("error %q does not wrap %v", err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not name %q", err, w)
		}
	}
}

var _ = fmt.Sprintf
