package fat

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Lookup finds name in dir, ignoring case. 8.3 aliases are not names.
func (v *Volume) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	v.lazy.Lock() // getDir and attr may read a directory in
	defer v.lazy.Unlock()
	_, d, err := v.getDir(dir)
	if err != nil {
		return volume.Attr{}, err
	}
	n := d.byName[fold(name)]
	if n == nil {
		return volume.Attr{}, fmt.Errorf("fat: %q: %w", name, syscall.ENOENT)
	}
	return v.attr(n), nil
}

// GetAttr is stat.
func (v *Volume) GetAttr(ino volume.Ino) (volume.Attr, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	v.lazy.Lock()
	defer v.lazy.Unlock()
	n, err := v.get(ino)
	if err != nil {
		return volume.Attr{}, err
	}
	return v.attr(n), nil
}

func (v *Volume) attr(n *node) volume.Attr {
	a := volume.Attr{
		Ino:   n.ino,
		Mode:  0o644,
		Size:  int64(n.ent.size),
		Nlink: 1,
		Atime: decodeTime(n.ent.accDate, 0, 0),
		Mtime: decodeTime(n.ent.wrtDate, n.ent.wrtTime, 0),
	}
	if n.ent.attr&attrReadOnly != 0 {
		a.Mode = 0o444
	}
	if n.isDir() {
		a.Mode = os.ModeDir | 0o755
		a.Nlink = 2
		a.Size = 0
		if d, err := v.loadDir(n); err == nil {
			a.Size = int64(len(d.data))
			for _, c := range d.list {
				if c.isDir() {
					a.Nlink++
				}
			}
		}
	}
	if n == v.root {
		a.Mtime, a.Atime = time0, time0
	}
	a.Ctime = a.Mtime // FAT keeps no change time
	cs := v.g.clusterSize
	a.Blocks = (a.Size + cs - 1) / cs * cs / 512
	return a
}

// time0 is what the root directory, which has no entry, shows.
var time0 = decodeTime(0, 0, 0)

// ReadDir lists dir in on-disk order, long names only.
func (v *Volume) ReadDir(dir volume.Ino) ([]volume.DirEntry, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	v.lazy.Lock()
	defer v.lazy.Unlock()
	_, d, err := v.getDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]volume.DirEntry, 0, len(d.list))
	for _, c := range d.list {
		var m os.FileMode
		if c.isDir() {
			m = os.ModeDir
		}
		out = append(out, volume.DirEntry{Name: c.name, Ino: c.ino, Mode: m})
	}
	return out, nil
}

// fileChain returns (and caches) a file's cluster chain, read again from
// the FAT when it was evicted. A reader holds v.lazy, a writer mu
// exclusively.
func (v *Volume) fileChain(n *node) ([]uint32, error) {
	if n.ent.cluster == 0 {
		return nil, nil
	}
	if c, ok := v.chains.Get(n.ino); ok {
		return c, nil
	}
	c, err := v.chain(n.ent.cluster)
	if err != nil {
		return nil, fmt.Errorf("fat: %q: %w", n.name, err)
	}
	v.cacheChain(n, c)
	return c, nil
}

// extents calls fn for each run of contiguous clusters covering
// [off, off+length) of a chain; lo and hi index the caller's buffer.
func (v *Volume) extents(chain []uint32, off, length int64, fn func(dev, lo, hi int64) error) error {
	cs := v.g.clusterSize
	end := off + length
	for pos := off; pos < end; {
		ci := pos / cs
		if ci >= int64(len(chain)) {
			return corrupt("cluster chain shorter than the file")
		}
		dev := v.g.clusterOffset(chain[ci]) + pos%cs
		n := cs - pos%cs
		for ci+1 < int64(len(chain)) && chain[ci+1] == chain[ci]+1 && pos+n < end {
			ci++
			n += cs
		}
		n = min(n, end-pos)
		if err := fn(dev, pos-off, pos-off+n); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// ReadAt reads file content.
func (v *Volume) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, err := v.rget(ino)
	if err != nil {
		return 0, err
	}
	if n.isDir() {
		return 0, fmt.Errorf("fat: %q: %w", n.name, syscall.EISDIR)
	}
	if off < 0 {
		return 0, fmt.Errorf("fat: negative offset: %w", syscall.EINVAL)
	}
	size := int64(n.ent.size)
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	v.lazy.Lock()
	chain, err := v.fileChain(n)
	v.lazy.Unlock()
	if err != nil {
		return 0, err
	}
	err = v.extents(chain, off, want, func(dev, lo, hi int64) error {
		if _, err := v.dev.ReadAt(p[lo:hi], dev); err != nil {
			return fmt.Errorf("fat: reading %q: %w", n.name, syscall.EIO)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// Readlink: FAT has no symbolic links.
func (v *Volume) Readlink(ino volume.Ino) (string, error) {
	return "", fmt.Errorf("fat: inode %d is not a symbolic link: %w", ino, syscall.EINVAL)
}

// StatFS reports clusters as blocks.
func (v *Volume) StatFS() (volume.StatFS, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return volume.StatFS{
		BlockSize:  uint32(v.g.clusterSize),
		Blocks:     uint64(v.g.clusters),
		BlocksFree: uint64(v.free),
		NameMaxLen: maxNameLen,
	}, nil
}
