package qcow2

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// countingFile counts the bytes written through it.
type countingFile struct {
	vdisk.File
	mu     sync.Mutex
	writes int
	bytes  int64
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.writes++
	c.bytes += int64(len(p))
	c.mu.Unlock()
	return c.File.WriteAt(p, off)
}

// TestFlushCost: on a 100 GiB image, a 10 MiB change flushes metadata in
// proportion to the change, not to the image; qemu-img checks the result.
func TestFlushCost(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	img := filepath.Join(dir, "big.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", img, "100G")
	f, err := vdisk.OpenOSFile(img, true)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{File: f}
	dd, err := Open(cf, vdisk.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*Disk)
	r := rand.New(rand.NewSource(5))
	buf := make([]byte, 64<<10)
	var offs []int64
	for i := 0; i < 160; i++ { // 160 × 64 KiB = 10 MiB, scattered
		r.Read(buf)
		off := r.Int63n(d.Size()-int64(len(buf))) &^ 511
		offs = append(offs, off)
		if _, err := d.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	before := cf.bytes
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	meta, writes := cf.bytes-before, cf.writes
	// Each 64 KiB write touches at most 2 clusters, each needing at most a
	// new L2 table: bound the metadata by the tables touched.
	if limit := int64(len(offs)) * 2 * (8 + 65536 + 2); meta > limit {
		t.Fatalf("flush wrote %d bytes of metadata for 10 MiB of data (limit %d)", meta, limit)
	}
	t.Logf("10 MiB scattered into 100 GiB: flush wrote %d bytes of metadata (%d host writes in all)", meta, writes)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCheck(t, "qcow2", img)

	// A change of one sector after that flushes a few entries only.
	f, _ = vdisk.OpenOSFile(img, true)
	cf = &countingFile{File: f}
	dd, err = Open(cf, vdisk.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dd.WriteAt(bytes.Repeat([]byte{7}, 512), offs[0]); err != nil {
		t.Fatal(err)
	}
	if err := dd.Close(); err != nil {
		t.Fatal(err)
	}
	if cf.bytes != 512 {
		t.Fatalf("an in-place sector write cost %d bytes, want 512", cf.bytes)
	}
	testutil.QemuCheck(t, "qcow2", img)
}

// TestConcurrentReads: many readers at once (run under -race) see what
// qemu-img sees, compressed clusters included.
func TestConcurrentReads(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src := makeRaw(t, dir, 16<<20, 40)
	img := filepath.Join(dir, "c.qcow2")
	testutil.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", src, img)
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	d := openImage(t, img, false)
	defer d.Close()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed))
			buf := make([]byte, 256<<10)
			for i := 0; i < 200; i++ {
				n := 1 + r.Intn(len(buf))
				off := r.Int63n(d.Size() - int64(n))
				if _, err := d.ReadAt(buf[:n], off); err != nil {
					errs <- err.Error()
					return
				}
				if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
					errs <- "content differs"
					return
				}
			}
		}(int64(g))
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
