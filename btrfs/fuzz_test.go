package btrfs

import (
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// memDev serves a fuzz input as a 256 MiB device: the input's first
// bytes at the superblock, the rest from 0x11000 on.
type memDev []byte

func (m memDev) Size() int64 { return 256 << 20 }
func (m memDev) ReadAt(p []byte, off int64) (int, error) {
	if off >= m.Size() {
		return 0, io.EOF
	}
	clear(p)
	if off < int64(len(m)) {
		copy(p, m[off:])
	}
	return len(p), nil
}
func (memDev) WriteAt([]byte, int64) (int, error) { return 0, syscall.EROFS }

// FuzzBtrfs opens whatever the bytes hold and walks the tree (bounded):
// no input may panic or hang. The seed is a real superblock and the
// tree blocks behind it are zero, so the fuzzer works on the superblock,
// the system chunk array and what they point at.
func FuzzBtrfs(f *testing.F) {
	if b, err := os.ReadFile("testdata/super.bin"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		img := make(memDev, 0x10000+len(b))
		copy(img[0x10000:], b)
		fs, err := Open(img)
		if err != nil {
			return
		}
		budget := 100
		var walk func(ino volume.Ino, depth int)
		walk = func(ino volume.Ino, depth int) {
			if budget--; budget < 0 || depth > 6 {
				return
			}
			a, err := fs.GetAttr(ino)
			if err != nil {
				return
			}
			fs.ListXattr(ino)
			if a.Mode.IsDir() {
				ents, _ := fs.ReadDir(ino)
				for _, e := range ents {
					walk(e.Ino, depth+1)
				}
				return
			}
			fs.Readlink(ino)
			fs.ReadAt(ino, make([]byte, 4096), 0)
		}
		walk(fs.Root(), 0)
	})
}

func FuzzLZO(f *testing.F) {
	f.Add([]byte{0x11, 0, 0, 0, 0x0b, 0, 0, 0, 0x16, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0}, uint16(4096))
	f.Fuzz(func(t *testing.T, b []byte, ram uint16) {
		out, err := lzoExtent(b, uint64(ram), 4096)
		if err == nil && len(out) > int(ram)+4096 {
			t.Fatalf("%d bytes out, ram %d", len(out), ram)
		}
	})
}
