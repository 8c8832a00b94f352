package vhdx

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/offvm/offvm/vdisk"
)

// BenchmarkReadSequential reads a fully allocated 256 MiB dynamic image
// in 1 MiB requests.
func BenchmarkReadSequential(b *testing.B) {
	dir := b.TempDir()
	rawPath, img := join(dir, "d.raw"), join(dir, "d.vhdx")
	r := rand.New(rand.NewSource(1))
	if err := os.WriteFile(rawPath, randomBytes(r, 256*mib), 0o644); err != nil {
		b.Fatal(err)
	}
	qemuImg(b, "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", rawPath, img)
	d := openPath(b, img, false, vdisk.Options{})
	defer d.Close()
	buf := make([]byte, mib)
	b.SetBytes(d.Size())
	b.ResetTimer()
	for range b.N {
		for off := int64(0); off < d.Size(); off += mib {
			if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCommit100G opens a 100 GiB dynamic image, writes 10 MiB in
// 160 scattered 64 KiB pieces and closes it: the cost must follow the
// change, not the image size.
func BenchmarkCommit100G(b *testing.B) {
	dir := b.TempDir()
	img := join(dir, "big.vhdx")
	qemuImg(b, "create", "-f", "vhdx", "-o", "subformat=dynamic,block_size=32M", img, "100G")
	r := rand.New(rand.NewSource(2))
	piece := randomBytes(r, 64*kib)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		d := openPath(b, img, true, vdisk.Options{})
		opened := time.Since(start)
		for i := range 160 {
			if _, err := d.WriteAt(piece, int64(i)*(100<<30)/160+int64(i)*4096); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(opened.Microseconds()), "open-µs")
	}
	b.StopTimer()
	st, _ := os.Stat(img)
	fmt.Fprintf(os.Stderr, "file size after: %d MiB\n", st.Size()/mib)
}
