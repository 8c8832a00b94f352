package mount

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// BenchmarkCommit10MiB commits a 10 MiB change into a 100 GiB dynamic
// image of each format: the cost must follow the bytes changed, never the
// image's size (make bench prints it).
func BenchmarkCommit10MiB(b *testing.B) {
	testutil.RequireTool(b, "qemu-img", "qemu-utils")
	for _, c := range []struct{ name, fmt, opts string }{
		{"vhdx", "vhdx", "subformat=dynamic"}, {"qcow2", "qcow2", ""}, {"vmdk", "vmdk", ""}, {"vhd", "vpc", "subformat=dynamic"},
	} {
		b.Run(c.name, func(b *testing.B) {
			chunk := make([]byte, 10<<20)
			for i := range chunk {
				chunk[i] = byte(i*31 + 1)
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				img := filepath.Join(b.TempDir(), "big."+c.name)
				args := []string{"create", "-q", "-f", c.fmt}
				if c.opts != "" {
					args = append(args, "-o", c.opts)
				}
				if out, err := exec.Command("qemu-img", append(args, img, "100G")...).CombinedOutput(); err != nil {
					b.Fatalf("qemu-img create: %v\n%s", err, out)
				}
				im, err := Open(img, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := im.Disk().WriteAt(chunk, 50<<30); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := im.Commit(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				im.Close()
			}
		})
	}
}
