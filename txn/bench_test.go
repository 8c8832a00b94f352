package txn

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/vdisk"
)

// BenchmarkCommit10MiB commits 10 MiB, in 64 KiB pieces spread over the
// whole disk, into sparse raw images of growing size: the time per commit
// must not grow with the image.
func BenchmarkCommit10MiB(b *testing.B) {
	const change, piece = 10 << 20, 64 << 10
	for _, size := range []int64{1 << 30, 100 << 30, 1 << 40} {
		b.Run(fmt.Sprintf("image=%dGiB", size>>30), func(b *testing.B) {
			dir := b.TempDir()
			image := filepath.Join(dir, "disk.img")
			f, err := os.Create(image)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Truncate(size); err != nil {
				b.Skipf("sparse %d-byte file: %v", size, err)
			}
			f.Close()
			data := randomBytes(30, piece)
			b.SetBytes(change)
			for i := 0; b.Loop(); i++ {
				base, err := openRaw(image, vdisk.Options{})
				if err != nil {
					b.Fatal(err)
				}
				o, err := NewOverlay(base, dir)
				if err != nil {
					b.Fatal(err)
				}
				stride := size / (change / piece)
				for j := range data {
					data[j]++ // every byte differs from the last commit's
				}
				for k := int64(0); k < change/piece; k++ {
					if _, err := o.WriteAt(data, k*stride); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := Commit(image, o, openRaw); err != nil {
					b.Fatal(err)
				}
				o.Close()
			}
		})
	}
}
