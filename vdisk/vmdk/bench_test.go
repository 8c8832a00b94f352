package vmdk

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// BenchmarkRead reads a 256 MiB qemu-made image sequentially in 1 MiB
// pieces (b.SetBytes: MB/s is the throughput).
func BenchmarkRead(b *testing.B) {
	for _, sub := range []string{"monolithicSparse", "streamOptimized", "monolithicFlat"} {
		b.Run(sub, func(b *testing.B) {
			dir := b.TempDir()
			rawPath := filepath.Join(dir, "disk.raw")
			const size = 256 * mib
			makeRaw(b, rawPath, size, 1)
			applyPattern(b, nil, rawPath, []write{{off: 0, n: size}}, 1) // all allocated
			img := filepath.Join(dir, "d.vmdk")
			qemuImg(b, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, rawPath, img)
			d := openDisk(b, img, false)
			defer d.Close()
			buf := make([]byte, mib)
			b.SetBytes(size)
			cpu := time.Duration(0)
			for b.Loop() {
				start := testutil.CPUTime()
				for off := int64(0); off < size; off += mib {
					if _, err := d.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
				cpu += testutil.CPUTime() - start
			}
			b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
		})
	}
}

// BenchmarkCommit writes 10 MiB into a 100 GiB sparse image and flushes:
// the flush must cost what changed, not the image size.
func BenchmarkCommit(b *testing.B) {
	dir := b.TempDir()
	img := filepath.Join(dir, "big.vmdk")
	qemuImg(b, "create", "-f", "vmdk", img, "100G")
	buf := make([]byte, 10*mib)
	for i := range buf {
		buf[i] = byte(i) | 1
	}
	d := openDisk(b, img, true)
	defer d.Close()
	b.SetBytes(int64(len(buf)))
	off := int64(0)
	cpu := time.Duration(0)
	for b.Loop() {
		start := testutil.CPUTime()
		if _, err := d.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := d.Flush(); err != nil {
			b.Fatal(err)
		}
		cpu += testutil.CPUTime() - start
		off = (off + 7*1024*mib) % (99 * 1024 * mib)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}
