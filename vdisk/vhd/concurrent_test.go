package vhd

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestConcurrentReadWrite: readers of the first half of the disk run
// beside a writer allocating blocks in the second half (run with -race).
// Readers must always see the raw disk; afterwards qemu-img must see the
// writes.
func TestConcurrentReadWrite(t *testing.T) {
	requireQemu(t)
	for _, variant := range []string{"dynamic", "differencing"} {
		t.Run(variant, func(t *testing.T) {
			dir := t.TempDir()
			rawPath := filepath.Join(dir, "disk.raw")
			path := filepath.Join(dir, "disk.vhd")
			makeRaw(t, rawPath, 32*MiB, 15)
			qemuConvert(t, rawPath, path, "dynamic")
			if variant == "differencing" {
				child := filepath.Join(dir, "child.vhd")
				makeDifferencing(t, path, child, "disk.vhd", nil)
				path = child
			}
			want, err := os.ReadFile(rawPath)
			if err != nil {
				t.Fatal(err)
			}
			d := openPath(t, path, true)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 1))
					buf := make([]byte, 300<<10)
					for range 200 {
						off := r.Int64N(16*MiB - int64(len(buf)))
						n := 1 + r.IntN(len(buf))
						if _, err := d.ReadAt(buf[:n], off); err != nil {
							t.Error(err)
							return
						}
						if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
							t.Errorf("read at %d differs", off)
							return
						}
					}
				}()
			}
			mirror, err := os.OpenFile(rawPath, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(99, 1))
			for range 100 {
				b := make([]byte, 1+r.IntN(64<<10))
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				off := 16*MiB + r.Int64N(16*MiB-int64(len(b)))
				if _, err := d.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
				mirror.WriteAt(b, off)
			}
			wg.Wait()
			mirror.Close()
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			assertSame(t, openPath(t, path, false), rawPath)
			if variant == "dynamic" {
				qemuCompare(t, path, rawPath)
			}
		})
	}
}
