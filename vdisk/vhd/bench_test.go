package vhd

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// benchImage makes a 64 MiB disk full of data, as raw and as a VHD of the
// given kind, and returns both paths.
func benchImage(b *testing.B, kind string) (rawPath, vhdPath string) {
	testutil.RequireTool(b, "qemu-img", "qemu-utils")
	dir := b.TempDir()
	rawPath = filepath.Join(dir, "disk.raw")
	vhdPath = filepath.Join(dir, "disk.vhd")
	testutil.Run(b, "qemu-img", "create", "-q", "-f", "raw", rawPath, "64M")
	testutil.Run(b, "qemu-io", "-f", "raw", "-c", "write -P 0x5c 0 64M", rawPath)
	sub := kind
	if kind == "differencing" {
		sub = "dynamic"
	}
	testutil.Run(b, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat="+sub+",force_size=on", rawPath, vhdPath)
	return rawPath, vhdPath
}

// BenchmarkRead reads a 64 MiB image sequentially in 1 MiB requests, and
// the raw file beside it the same way, for the ratio.
func BenchmarkRead(b *testing.B) {
	for _, kind := range []string{"raw-file", "fixed", "dynamic"} {
		b.Run(kind, func(b *testing.B) {
			k := kind
			if k == "raw-file" {
				k = "fixed"
			}
			rawPath, vhdPath := benchImage(b, k)
			var r io.ReaderAt
			var size int64 = 64 << 20
			if kind == "raw-file" {
				f, err := os.Open(rawPath)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				r = f
			} else {
				f, err := vdisk.OpenOSFile(vhdPath, false)
				if err != nil {
					b.Fatal(err)
				}
				d, err := Open(f, vdisk.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				r = d
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				for off := int64(0); off < size; off += int64(len(buf)) {
					if _, err := r.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkWriteNewBlocks fills a fresh dynamic image with 1 MiB writes
// (every block allocated on the way).
func BenchmarkWriteNewBlocks(b *testing.B) {
	testutil.RequireTool(b, "qemu-img", "qemu-utils")
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i) | 1
	}
	b.SetBytes(64 << 20)
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "w.vhd")
		testutil.Run(b, "qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic,force_size=on", path, "64M")
		f, err := vdisk.OpenOSFile(path, true)
		if err != nil {
			b.Fatal(err)
		}
		d, err := Open(f, vdisk.Options{Writable: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for off := int64(0); off < 64<<20; off += 1 << 20 {
			if _, err := d.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
		d.Close()
	}
}
