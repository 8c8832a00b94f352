package xfs

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Cache bounds in entries: a walk of a large tree stays cached.
const (
	maxCachedInodes = 1 << 16
	maxCachedDirs   = 1 << 12
)

// FS is an open XFS file system. It is safe for concurrent use: the
// superblock's geometry is fixed after Open, the caches lock, and
// writes (OpenWritable) are one operation at a time.
type FS struct {
	dev volume.Device
	sb  *super

	// dirty says why the log is not clean ("" when it is).
	dirty string

	// w is nil when read-only; roReason then says why.
	w        *writer
	roReason string

	mu     sync.Mutex
	gen    uint64 // bumped by every write: older reads stay uncached
	inodes map[uint64]*inode
	dirs   map[uint64]map[string]dirEnt
	lists  map[uint64][]dirEnt
}

var _ volume.FS = (*FS)(nil)

// Open reads the superblock and the root directory of the XFS on dev.
func Open(dev volume.Device) (*FS, error) {
	sb, err := readSuper(dev, dev.Size())
	if err != nil {
		return nil, err
	}
	f := &FS{dev: dev, sb: sb, inodes: map[uint64]*inode{}, dirs: map[uint64]map[string]dirEnt{}, lists: map[uint64][]dirEnt{}}
	root, err := f.inode(sb.rootIno)
	if err != nil {
		return nil, fmt.Errorf("xfs: root directory: %w", err)
	}
	if !root.isDir() {
		return nil, fmt.Errorf("xfs: root inode %d is not a directory: %w", sb.rootIno, ErrCorrupt)
	}
	f.dirty = f.logState(sb.logStart, sb.logBlocks)
	return f, nil
}

func (f *FS) Type() string { return "xfs" }

// Label is the file system's name (xfs_admin -L).
func (f *FS) Label() string { return f.sb.label }

func (f *FS) Root() volume.Ino { return volume.Ino(f.sb.rootIno) }

// ReadOnlyReason is "" when the file system is writable, else why not;
// a log that needs recovery is named first, since the tree may then
// miss the guest's last changes.
func (f *FS) ReadOnlyReason() string {
	switch {
	case f.w != nil:
		return ""
	case f.roReason != "":
		return f.roReason
	case f.dirty != "":
		return f.dirty + "; read as the disk stands, without replaying the log"
	}
	return "xfs: opened read-only"
}

// LogDirty says why the log needs recovery, "" when it is clean.
func (f *FS) LogDirty() string { return f.dirty }

// Version is 4 or 5 (metadata CRCs).
func (f *FS) Version() int { return f.sb.version }

// errno turns internal errors into what the FUSE layer returns: EIO for
// damage, with the message logged by the caller's wrapping.
func errno(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%v: %w", err, syscall.EIO)
	}
	return err
}

// inode returns inode ino, cached, with its data fork's extents read.
func (f *FS) inode(ino uint64) (*inode, error) {
	f.mu.Lock()
	in, ok := f.inodes[ino]
	gen := f.gen
	f.mu.Unlock()
	if ok {
		return in, nil
	}
	in, err := f.readInode(ino)
	if err != nil {
		return nil, errno(err)
	}
	if in.format == fmtExtents || in.format == fmtBtree {
		in.extents, in.extentsErr = f.forkExtents(in, in.dfork, in.format, in.nextents)
	}
	f.mu.Lock()
	if len(f.inodes) >= maxCachedInodes {
		clear(f.inodes)
	}
	if gen == f.gen {
		f.inodes[ino] = in
	}
	f.mu.Unlock()
	return in, nil
}

func (f *FS) extentsOf(in *inode) ([]extent, error) {
	return in.extents, errno(in.extentsErr)
}

func (f *FS) attrExtents(in *inode) ([]extent, error) {
	return f.forkExtents(in, in.afork, in.aformat, in.anextents)
}

func (f *FS) GetAttr(ino volume.Ino) (volume.Attr, error) {
	in, err := f.inode(uint64(ino))
	if err != nil {
		return volume.Attr{}, err
	}
	a := in.attr()
	a.Blocks = int64(in.nblocks) * f.sb.blockSize / 512
	return a, nil
}

// dir returns a directory's entries by name, cached.
func (f *FS) dir(ino uint64) (map[string]dirEnt, []dirEnt, error) {
	f.mu.Lock()
	m, ok := f.dirs[ino]
	l := f.lists[ino]
	gen := f.gen
	f.mu.Unlock()
	if ok {
		return m, l, nil
	}
	in, err := f.inode(ino)
	if err != nil {
		return nil, nil, err
	}
	l, err = f.readDir(in)
	if err != nil {
		return nil, nil, errno(err)
	}
	m = make(map[string]dirEnt, len(l))
	for _, e := range l {
		m[e.name] = e
	}
	f.mu.Lock()
	if len(f.dirs) >= maxCachedDirs {
		clear(f.dirs)
		clear(f.lists)
	}
	if gen == f.gen {
		f.dirs[ino], f.lists[ino] = m, l
	}
	f.mu.Unlock()
	return m, l, nil
}

func (f *FS) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	m, _, err := f.dir(uint64(dir))
	if err != nil {
		return volume.Attr{}, err
	}
	e, ok := m[name]
	if !ok {
		return volume.Attr{}, syscall.ENOENT
	}
	return f.GetAttr(volume.Ino(e.ino))
}

func (f *FS) ReadDir(dir volume.Ino) ([]volume.DirEntry, error) {
	_, l, err := f.dir(uint64(dir))
	if err != nil {
		return nil, err
	}
	return f.entries(l), nil
}

func (f *FS) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	in, err := f.inode(uint64(ino))
	if err != nil {
		return 0, err
	}
	if in.isDir() {
		return 0, syscall.EISDIR
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off >= in.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), in.size-off))
	switch in.format {
	case fmtLocal: // inline data (not made by Linux for files, but valid)
		if in.size > int64(len(in.dfork)) {
			return 0, errno(fmt.Errorf("xfs: inode %d: inline size %d: %w", in.ino, in.size, ErrCorrupt))
		}
		copy(p[:n], in.dfork[off:])
	case fmtExtents, fmtBtree:
		ex, err := f.extentsOf(in)
		if err != nil {
			return 0, err
		}
		if err := f.readFork(ex, p[:n], off); err != nil {
			return 0, errno(fmt.Errorf("xfs: inode %d: %w", in.ino, err))
		}
	default:
		return 0, syscall.EINVAL
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *FS) Readlink(ino volume.Ino) (string, error) {
	in, err := f.inode(uint64(ino))
	if err != nil {
		return "", err
	}
	if !in.isLink() {
		return "", syscall.EINVAL
	}
	if in.size <= 0 || in.size > 4096 {
		return "", errno(fmt.Errorf("xfs: symlink %d of %d bytes: %w", in.ino, in.size, ErrCorrupt))
	}
	if in.format == fmtLocal {
		if in.size > int64(len(in.dfork)) {
			return "", errno(fmt.Errorf("xfs: symlink %d: %w", in.ino, ErrCorrupt))
		}
		return string(in.dfork[:in.size]), nil
	}
	ex, err := f.extentsOf(in)
	if err != nil {
		return "", err
	}
	return f.remoteSymlink(in, ex)
}

// remoteSymlink reads a target kept in blocks (v5: XSLM headers).
func (f *FS) remoteSymlink(in *inode, ex []extent) (string, error) {
	bs := f.sb.blockSize
	out := make([]byte, 0, in.size)
	b := make([]byte, bs)
	for blk := int64(0); int64(len(out)) < in.size; blk++ {
		if err := f.readFork(ex, b, blk*bs); err != nil {
			return "", errno(fmt.Errorf("xfs: symlink %d: %w", in.ino, err))
		}
		data := b
		if f.sb.version == 5 {
			if string(b[:4]) != "XSLM" || !crcOK(b, 12) || be.Uint64(b[32:]) != in.ino {
				return "", errno(fmt.Errorf("xfs: symlink %d block %d: bad header: %w", in.ino, blk, ErrCorrupt))
			}
			data = b[56:]
		}
		out = append(out, data[:min(int64(len(data)), in.size-int64(len(out)))]...)
	}
	return string(out), nil
}

func (f *FS) ListXattr(ino volume.Ino) ([]string, error) {
	in, err := f.inode(uint64(ino))
	if err != nil {
		return nil, err
	}
	xs, err := f.readAttrs(in)
	if err != nil {
		return nil, errno(err)
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.name
	}
	return out, nil
}

func (f *FS) GetXattr(ino volume.Ino, name string) ([]byte, error) {
	in, err := f.inode(uint64(ino))
	if err != nil {
		return nil, err
	}
	xs, err := f.readAttrs(in)
	if err != nil {
		return nil, errno(err)
	}
	for _, x := range xs {
		if x.name == name {
			return x.value, nil
		}
	}
	return nil, syscall.ENODATA
}

func (f *FS) StatFS() (volume.StatFS, error) {
	free := f.sb.fdblocks
	if f.w != nil {
		f.w.mu.Lock()
		free = f.w.fdblocks
		f.w.mu.Unlock()
	}
	return volume.StatFS{BlockSize: uint32(f.sb.blockSize), Blocks: f.sb.dblocks, BlocksFree: min(free, f.sb.dblocks),
		Files: f.sb.icount + free*uint64(f.sb.inoPerBlock), FilesFree: f.sb.ifree + free*uint64(f.sb.inoPerBlock), NameMaxLen: 255}, nil
}
