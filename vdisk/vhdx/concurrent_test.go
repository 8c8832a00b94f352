package vhdx

import (
	"bytes"
	"math/rand"
	"os"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestConcurrentAccess reads from several goroutines while one writes
// into other blocks (run with -race); qemu then checks the result.
func TestConcurrentAccess(t *testing.T) {
	dir := t.TempDir()
	rawPath, img := join(dir, "disk.raw"), join(dir, "disk.vhdx")
	const size = 32 * mib
	makeRaw(t, rawPath, size, 21)
	qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", rawPath, img)
	want := fileBytes(t, rawPath)
	d := openPath(t, img, true, vdisk.Options{})

	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			buf := make([]byte, 300*kib)
			for range 200 {
				off := r.Int63n(size/2 - int64(len(buf))) // the writer keeps to the upper half
				if _, err := d.ReadAt(buf, off); err != nil {
					errs <- err.Error()
					return
				}
				if !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
					errs <- "reader saw wrong data"
					return
				}
			}
		}()
	}
	var ws []aWrite
	r := rand.New(rand.NewSource(99))
	for i := range 40 {
		b := make([]byte, 5000+r.Intn(100000))
		r.Read(b)
		ws = append(ws, aWrite{size/2 + int64(i)*400*kib + int64(r.Intn(1000)), b})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, w := range ws {
			if _, err := d.WriteAt(w.data, w.off); err != nil {
				errs <- err.Error()
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, w := range ws {
		copy(want[w.off:], w.data)
	}
	sameBytes(t, "after concurrent writes", readAll(t, d), want)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCheck(t, "vhdx", img)
	if err := writeFileAt(rawPath, ws); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCompare(t, "vhdx", img, rawPath)
}

func writeFileAt(path string, ws []aWrite) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, w := range ws {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			return err
		}
	}
	return nil
}
