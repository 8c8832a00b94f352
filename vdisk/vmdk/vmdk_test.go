package vmdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestSubformats converts a raw disk with qemu-img into every subformat,
// reads it all back, writes a pattern, and lets qemu-img judge the result.
func TestSubformats(t *testing.T) {
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	makeRaw(t, rawPath, diskSize, 1)
	for _, sub := range []string{"monolithicSparse", "twoGbMaxExtentSparse", "monolithicFlat", "twoGbMaxExtentFlat", "streamOptimized"} {
		t.Run(sub, func(t *testing.T) {
			img := filepath.Join(dir, sub+".vmdk")
			qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, rawPath, img)

			before := mustRead(t, img)
			d := openDisk(t, img, false)
			if info := d.Info(); info.Format != "vmdk" || info.Variant != sub || info.ReadOnly == "" {
				t.Errorf("Info() = %+v", info)
			}
			compareDisk(t, d, rawPath)
			if _, err := d.WriteAt([]byte{1}, 0); !errors.Is(err, vdisk.ErrReadOnly) {
				t.Errorf("WriteAt on a read-only disk: %v, want ErrReadOnly", err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if mustRead(t, img) != before {
				t.Fatal("a read-only open changed the descriptor file")
			}

			if sub == "streamOptimized" {
				checkStreamReadOnly(t, img, rawPath)
				return
			}
			want := filepath.Join(dir, sub+".want.raw")
			testutil.CopyFile(t, rawPath, want)
			cid := qemuCID(t, img)
			d = openDisk(t, img, true)
			if ro := d.Info().ReadOnly; ro != "" {
				t.Fatalf("writable open says read-only: %q", ro)
			}
			applyPattern(t, d, want, pattern(diskSize), 2)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			qemuCheck(t, img)
			testutil.QemuCompare(t, "vmdk", img, want)
			if qemuCID(t, img) == cid {
				t.Errorf("CID %08x unchanged after writes", cid)
			}
			d = openDisk(t, img, false)
			compareDisk(t, d, want)
			d.Close()
			if sub == "monolithicSparse" {
				checkRedundant(t, img, want)
			}
		})
	}
}

// checkStreamReadOnly: a writable open of a streamOptimized image is
// read-only with the documented reason, and nothing changes.
func checkStreamReadOnly(t *testing.T, img, rawPath string) {
	before, _ := os.ReadFile(img)
	d := openDisk(t, img, true)
	if ro := d.Info().ReadOnly; ro != "streamOptimized VMDK is read-only" {
		t.Errorf("ReadOnly = %q", ro)
	}
	if _, err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, vdisk.ErrReadOnly) {
		t.Errorf("WriteAt: %v, want ErrReadOnly", err)
	}
	d.Close()
	after, _ := os.ReadFile(img)
	if testutil.FirstDiff(before, after) >= 0 {
		t.Error("a read-only streamOptimized image changed")
	}
	testutil.QemuCompare(t, "vmdk", img, rawPath)
}

// checkRedundant points a copy's header at the redundant grain directory
// and asks qemu-img whether that copy holds the same disk: proof that the
// redundant tables were updated too.
func checkRedundant(t *testing.T, img, want string) {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[56:64], b[48:56]) // gdOffset = rgdOffset
	red := strings.TrimSuffix(img, ".vmdk") + "-redundant.vmdk"
	if err := os.WriteFile(red, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCompare(t, "vmdk", red, want)
}

// TestMultiExtent: a disk larger than 2 GiB splits into several extent
// files; reads and writes cross the extent boundary.
func TestMultiExtent(t *testing.T) {
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "big.raw")
	const size = 2*1024*mib + 64*mib
	f, err := os.Create(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	ws := []write{{off: 2*1024*mib - 3000, n: 10000}, {off: 100 * mib, n: 5000}, {off: size - 512, n: 512}}
	for _, sub := range []string{"twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			seeded := filepath.Join(dir, sub+".raw")
			testutil.CopyFile(t, rawPath, seeded)
			applyPattern(t, nil, seeded, ws, 3) // content across the boundary
			img := filepath.Join(dir, sub+".vmdk")
			qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, seeded, img)
			if n := strings.Count(mustRead(t, img), `.vmdk"`); n != 2 {
				t.Fatalf("qemu-img made %d extents, want 2", n)
			}
			d := openDisk(t, img, true)
			rf, err := os.Open(seeded)
			if err != nil {
				t.Fatal(err)
			}
			defer rf.Close()
			for _, w := range ws {
				got, want := make([]byte, w.n+4096), make([]byte, w.n+4096)
				off := max(w.off-2048, 0)
				n, _ := d.ReadAt(got, off)
				rf.ReadAt(want, off)
				if i := testutil.FirstDiff(got[:n], want[:n]); i >= 0 {
					t.Fatalf("byte %d differs", off+int64(i))
				}
			}
			applyPattern(t, d, seeded, []write{{off: 2*1024*mib - 70000, n: 200000}, {off: 2*1024*mib + grain, n: 512}}, 4)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			qemuCheck(t, img)
			testutil.QemuCompare(t, "vmdk", img, seeded)
		})
	}
}

func mustRead(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConcurrentReads reads from many goroutines at once (run with -race).
func TestConcurrentReads(t *testing.T) {
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	makeRaw(t, rawPath, 16*mib, 5)
	img := filepath.Join(dir, "s.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", rawPath, img)
	want := mustRead(t, rawPath)
	d := openDisk(t, img, false)
	defer d.Close()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 4096+g*512)
			for off := int64(g * 4096); off+int64(len(buf)) <= d.Size(); off += 37 * 4096 {
				if _, err := d.ReadAt(buf, off); err != nil {
					errs <- err.Error()
					return
				}
				if string(buf) != want[off:off+int64(len(buf))] {
					errs <- "data differs"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
