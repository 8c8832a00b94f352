package ext

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/volume"
)

// walkLR does what `ls -lR` asks of the engine: list every directory and
// stat every entry, read every link.
func walkLR(b testing.TB, v volume.FS, ino volume.Ino) int {
	ents, err := v.ReadDir(ino)
	if err != nil {
		b.Fatal(err)
	}
	n := len(ents)
	for _, e := range ents {
		if _, err := v.Lookup(ino, e.Name); err != nil {
			b.Fatal(err)
		}
		switch {
		case e.Mode.IsDir():
			n += walkLR(b, v, e.Ino)
		case e.Mode&os.ModeSymlink != 0:
			v.Readlink(e.Ino)
		}
	}
	return n
}

// BenchmarkWalk walks the 3,000-entry test tree on a freshly opened file
// system each time (cold caches), then again on a warm one.
func BenchmarkWalk(b *testing.B) {
	requireE2fs(b)
	src := buildTree(b, treeOpts{many: 3000})
	for _, kind := range []string{"ext2", "ext4"} {
		img := mkfs(b, kind, 64, src, "-b", "4096")
		b.Run(kind+"-cold", func(b *testing.B) {
			for b.Loop() {
				walkLR(b, openImage(b, img), 2)
			}
		})
		b.Run(kind+"-warm", func(b *testing.B) {
			v := openImage(b, img)
			walkLR(b, v, 2)
			for b.Loop() {
				walkLR(b, v, 2)
			}
		})
	}
}

// BenchmarkRead reads a 64 MiB file sequentially in 1 MiB requests (the
// FUSE layer's size).
func BenchmarkRead(b *testing.B) {
	requireE2fs(b)
	src := b.TempDir()
	if err := os.WriteFile(filepath.Join(src, "big"), pattern(64<<20, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ kind, bs string }{{"ext2", "1024"}, {"ext2", "4096"}, {"ext4", "4096"}} {
		img := mkfs(b, c.kind, 100, src, "-b", c.bs)
		b.Run(c.kind+"-"+c.bs, func(b *testing.B) {
			v := openImage(b, img)
			a, err := volume.Resolve(v, "big")
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(a.Size)
			for b.Loop() {
				for off := int64(0); ; off += int64(len(buf)) {
					if _, err := v.ReadAt(a.Ino, buf, off); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
