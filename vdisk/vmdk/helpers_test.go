package vmdk

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

const (
	mib      = 1 << 20
	diskSize = 64 * mib
	grain    = 64 << 10 // qemu's VMDK grain
	gtSpan   = 512 * grain
)

// openAny opens a parent the way vdisk/detect will: by content.
func openAny(path string) (vdisk.Disk, error) {
	f, err := vdisk.OpenOSFile(path, false)
	if err != nil {
		return nil, err
	}
	opts := vdisk.Options{OpenParent: openAny}
	if Match(f) {
		d, err := Open(f, opts)
		if err != nil {
			f.Close()
		}
		return d, err
	}
	return raw.Open(f, opts)
}

func openDisk(t testing.TB, path string, writable bool) vdisk.Disk {
	t.Helper()
	f, err := vdisk.OpenOSFile(path, writable)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(f, vdisk.Options{Writable: writable, OpenParent: openAny})
	if err != nil {
		f.Close()
		t.Fatalf("Open %s: %v", path, err)
	}
	return d
}

// makeRaw writes a raw disk of size bytes: random runs at scattered offsets
// (some crossing grain and grain-table boundaries), zeros elsewhere.
func makeRaw(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	offs := []int64{0, 3*grain - 700, gtSpan - 5000, size / 3, size - 2*grain - 1}
	for range 20 {
		offs = append(offs, rng.Int64N(size-200000))
	}
	for _, off := range offs {
		if off >= size {
			continue
		}
		buf := make([]byte, 1+rng.IntN(150000))
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(buf[:min(int64(len(buf)), size-off)], off); err != nil {
			t.Fatal(err)
		}
	}
}

func qemuImg(t testing.TB, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	return testutil.Run(t, "qemu-img", args...)
}

// compareDisk reads every byte of d and compares it with the raw file.
func compareDisk(t testing.TB, d vdisk.Disk, rawPath string) {
	t.Helper()
	want, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", d.Size(), len(want))
	}
	got := make([]byte, 1*mib+3) // odd size: reads straddle grains
	for off := int64(0); off < d.Size(); off += int64(len(got)) {
		n, err := d.ReadAt(got, off)
		if err != nil && off+int64(len(got)) < d.Size() {
			t.Fatalf("ReadAt %d: %v", off, err)
		}
		if i := testutil.FirstDiff(got[:n], want[off:off+int64(n)]); i >= 0 {
			t.Fatalf("byte %d differs from the raw disk", off+int64(i))
		}
	}
}

// write is one write of the test pattern.
type write struct {
	off  int64
	n    int
	zero bool
}

// pattern covers the first and last sectors, grain and grain-table
// boundaries, unallocated space, a long run, and zeros into unallocated
// space.
func pattern(size int64) []write {
	return []write{
		{off: 0, n: 512},
		{off: size - 512, n: 512},
		{off: grain - 100, n: 300},
		{off: gtSpan - 1000, n: 3000},
		{off: size/2 + 7*grain + 13, n: 70000},
		{off: 5*mib + 12345, n: mib + 7},
		{off: size - 3*grain, n: grain, zero: true},
		{off: 9 * grain, n: 2 * grain},
		{off: 11*grain + 512, n: 1024},
	}
}

// applyPattern writes the pattern into d (unless nil) and into the raw
// file at rawPath.
func applyPattern(t testing.TB, d vdisk.Disk, rawPath string, ws []write, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	f, err := os.OpenFile(rawPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range ws {
		buf := make([]byte, w.n)
		if !w.zero {
			for i := range buf {
				buf[i] = byte(rng.Uint32()) | 1
			}
		}
		if d == nil {
		} else if n, err := d.WriteAt(buf, w.off); err != nil || n != len(buf) {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(buf), w.off, n, err)
		}
		if _, err := f.WriteAt(buf, w.off); err != nil {
			t.Fatal(err)
		}
	}
}

// qemuCheck runs qemu-img check, which fails on any error it finds.
func qemuCheck(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "check", "-f", "vmdk", img).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img check %s: %v\n%s", img, err, out)
	}
	t.Logf("qemu-img check %s: %s", filepath.Base(img), bytes.TrimSpace(out))
}

// qemuCID reads the image's content ID as qemu-img sees it.
func qemuCID(t testing.TB, img string) uint64 {
	t.Helper()
	var info struct {
		Specific struct {
			Data struct {
				CID uint64 `json:"cid"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	out := qemuImg(t, "info", "--output=json", "-f", "vmdk", img)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return info.Specific.Data.CID
}
