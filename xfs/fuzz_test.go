package xfs

import (
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// zeroTail is b followed by zeros up to size: a whole file system's
// worth of address space from a fuzzer's few kilobytes.
type zeroTail struct {
	b    []byte
	size int64
}

func (z zeroTail) Size() int64 { return z.size }
func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off >= z.size {
		return 0, io.EOF
	}
	clear(p)
	if off < int64(len(z.b)) {
		copy(p, z.b[off:])
	}
	if rem := z.size - off; int64(len(p)) > rem {
		return int(rem), io.EOF
	}
	return len(p), nil
}
func (zeroTail) WriteAt([]byte, int64) (int, error) { return 0, syscall.EROFS }

// spread puts a fuzz input's first 512 bytes at the superblock and the
// rest at the root inode (inode 128's block in a default mkfs), so that
// a small input reaches inodes, directories and attributes.
func spread(b []byte) zeroTail {
	img := make([]byte, 80<<10)
	copy(img, b[:min(len(b), 512)])
	if len(b) > 512 {
		copy(img[64<<10:], b[512:])
	}
	return zeroTail{img, 300 << 20}
}

// FuzzXFS opens whatever the bytes hold and walks its tree (bounded),
// reading files, links and attributes: no input may panic or hang.
func FuzzXFS(f *testing.F) {
	// from an XFS made by mkfs.xfs 6.1 and filled by the kernel:
	// superblock, root inode chunk with short-form and extent
	// directories, a symlink, an xattr, a fragmented file
	// the superblock, then the root inode's cluster and what follows it
	if b, err := os.ReadFile("testdata/xfs-seed.bin"); err == nil {
		f.Add(b)
	}
	skipCRC = true
	defer func() { skipCRC = false }()
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := Open(spread(b))
		if err != nil {
			return
		}
		ourTreeFuzz(fs)
	})
}

func ourTreeFuzz(fs *FS) {
	{
		budget := 200
		var walk func(ino volume.Ino, depth int)
		walk = func(ino volume.Ino, depth int) {
			if budget--; budget < 0 || depth > 8 {
				return
			}
			a, err := fs.GetAttr(ino)
			if err != nil {
				return
			}
			fs.ListXattr(ino)
			fs.GetXattr(ino, "user.a")
			switch {
			case a.Mode.IsDir():
				ents, _ := fs.ReadDir(ino)
				for _, e := range ents {
					fs.Lookup(ino, e.Name)
					walk(e.Ino, depth+1)
				}
			case a.Mode&os.ModeSymlink != 0:
				fs.Readlink(ino)
			default:
				buf := make([]byte, 8192)
				fs.ReadAt(ino, buf, 0)
				fs.ReadAt(ino, buf, a.Size-100)
			}
		}
		walk(fs.Root(), 0)
		fs.StatFS()
	}
}

// pageDev is a zeroTail that takes writes, in 4 KiB pages.
type pageDev struct {
	zeroTail
	pages map[int64][]byte
}

func (d *pageDev) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.zeroTail.ReadAt(p, off)
	for i := 0; i < n; {
		pg, po := (off+int64(i))/4096, (off+int64(i))%4096
		k := min(n-i, int(4096-po))
		if b, ok := d.pages[pg]; ok {
			copy(p[i:i+k], b[po:])
		}
		i += k
	}
	return n, err
}

func (d *pageDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, syscall.EIO
	}
	for i := 0; i < len(p); {
		pg, po := (off+int64(i))/4096, (off+int64(i))%4096
		b, ok := d.pages[pg]
		if !ok {
			b = make([]byte, 4096)
			d.zeroTail.ReadAt(b, pg*4096)
			d.pages[pg] = b
		}
		k := copy(b[po:], p[i:])
		i += k
	}
	return len(p), nil
}

// FuzzXFSWrite opens whatever the bytes hold for writing and changes
// it: no input may panic or hang the writer.
func FuzzXFSWrite(f *testing.F) {
	if b, err := os.ReadFile("testdata/xfs-seed.bin"); err == nil {
		f.Add(b)
	}
	skipCRC = true
	defer func() { skipCRC = false }()
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := OpenWritable(&pageDev{spread(b), map[int64][]byte{}})
		if err != nil || fs.ReadOnlyReason() != "" {
			return
		}
		root := fs.Root()
		if a, err := fs.Create(root, "new", 0o644); err == nil {
			fs.WriteAt(a.Ino, make([]byte, 9000), 100)
			fs.Truncate(a.Ino, 10)
		}
		ents, _ := fs.ReadDir(root)
		for i, e := range ents {
			if i > 6 {
				break
			}
			fs.WriteAt(e.Ino, []byte("xyz"), 5000)
			fs.SetXattr(e.Ino, "user.fuzz", make([]byte, 1000)) // an attribute leaf
			fs.RemoveXattr(e.Ino, "user.fuzz")
			fs.Truncate(e.Ino, 1)
			fs.SetTimes(e.Ino, nil, nil)
			fs.Unlink(root, e.Name)
		}
		ourTreeFuzz(fs)
	})
}
