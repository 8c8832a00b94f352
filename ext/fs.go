// Package ext reads ext2, ext3 and ext4 file systems, in pure Go, and
// serves them through volume.FS. OpenWritable adds volume.Writer for ext4
// with extents (see ReadOnlyReason for what stays read-only).
//
// The journal is never replayed: a file system whose needs_recovery flag
// is set (a guest that crashed or was not shut down cleanly) is read as
// it stands on disk, which is what the kernel would see before replay;
// the last transactions may be missing. NeedsRecovery reports the flag.
//
// Checksums (metadata_csum, gdt_csum) are not verified: every structure
// is bounds-checked instead, and damage gives EIO rather than a panic.
package ext

import (
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/offvm/offvm/internal/lru"
	"github.com/offvm/offvm/volume"
)

const rootIno = 2

// Cache bounds, in bytes (approximate for inodes and listings): a walk
// of a tree of 100,000 files stays cached.
const (
	maxCachedInodeBytes = 24 << 20
	maxCachedDirBytes   = 32 << 20
	maxCachedMetaBytes  = 16 << 20
)

// FS is an open ext2/3/4 file system. It is safe for concurrent use: all
// fields are fixed after Open except the caches, which lock; readers
// share rw and changes take it exclusively (begin, end).
type FS struct {
	rw     sync.RWMutex
	dev    volume.Device
	sb     *superblock
	groups []group
	inodes *lru.Cache[uint32, *inode]
	dirs   *lru.Cache[uint32, *dir]
	meta   *lru.Cache[uint64, []byte]
	// w is the write state, nil when read-only; roReason says why.
	w        *writer
	roReason string
}

var _ volume.FS = (*FS)(nil)

// Open reads the superblock and group descriptors of the file system on
// dev.
func Open(dev volume.Device) (*FS, error) {
	sb, err := readSuper(dev, dev.Size())
	if err != nil {
		return nil, err
	}
	f := &FS{
		dev:    dev,
		sb:     sb,
		inodes: lru.New[uint32, *inode](maxCachedInodeBytes),
		dirs:   lru.New[uint32, *dir](maxCachedDirBytes),
		meta:   lru.New[uint64, []byte](maxCachedMetaBytes),
	}
	if err := f.readGroups(); err != nil {
		return nil, err
	}
	root, err := f.inode(rootIno)
	if err != nil {
		return nil, fmt.Errorf("ext: root directory: %w", err)
	}
	if !root.isDir() {
		return nil, fmt.Errorf("ext: root inode is not a directory (mode %#o): %w", root.mode, syscall.EIO)
	}
	return f, nil
}

// Type is "ext2", "ext3" or "ext4", by the features in use.
func (f *FS) Type() string { return f.sb.typeName() }

// Label is the volume name (e2label).
func (f *FS) Label() string { return f.sb.label() }

// Root is inode 2, as in ext2/3/4 itself.
func (f *FS) Root() volume.Ino { return rootIno }

// NeedsRecovery tells whether the journal holds transactions not yet
// written to their place (the needs_recovery feature). Such a file system
// is still served, as it stands on disk, without replaying them.
func (f *FS) NeedsRecovery() bool { return f.sb.incompat&incompatRecover != 0 }

// StatFS reports the superblock's counters, which the kernel updates at
// unmount (they may be slightly stale after a crash).
func (f *FS) StatFS() (volume.StatFS, error) {
	if f.w != nil {
		return f.writerStatFS(), nil
	}
	free := f.sb.freeBlocks
	if free > f.sb.blocksCount {
		free = f.sb.blocksCount
	}
	return volume.StatFS{
		BlockSize:  uint32(f.sb.blockSize),
		Blocks:     f.sb.blocksCount,
		BlocksFree: free,
		Files:      uint64(f.sb.inodesCount),
		FilesFree:  min(uint64(f.sb.raw.FreeInodesCount), uint64(f.sb.inodesCount)),
		NameMaxLen: 255,
	}, nil
}

// GetAttr returns the attributes of inode ino.
func (f *FS) getAttr(ino volume.Ino) (volume.Attr, error) {
	in, err := f.inodeOf(ino)
	if err != nil {
		return volume.Attr{}, err
	}
	return in.attr(), nil
}

func (f *FS) inodeOf(ino volume.Ino) (*inode, error) {
	if ino > volume.Ino(f.sb.inodesCount) || ino == 0 {
		return nil, fmt.Errorf("ext: inode %d out of range 1..%d: %w", ino, f.sb.inodesCount, syscall.ENOENT)
	}
	return f.inode(uint32(ino))
}

// readDev reads exactly len(p) bytes at off; anything short is EIO.
func (f *FS) readDev(p []byte, off int64) error {
	if off < 0 || off > f.dev.Size()-int64(len(p)) {
		return fmt.Errorf("ext: read of %d bytes at %d is past the %d-byte device: %w", len(p), off, f.dev.Size(), syscall.EIO)
	}
	n, err := f.dev.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("ext: reading %d bytes at %d: %v: %w", len(p), off, err, syscall.EIO)
}

// metaBlock returns physical block pblk (an indirect block, extent node,
// xattr block) from the bounded metadata cache. The slice is shared:
// callers only read it.
func (f *FS) metaBlock(pblk uint64) ([]byte, error) {
	if pblk == 0 || pblk >= f.sb.blocksCount {
		return nil, fmt.Errorf("ext: block %d is outside the %d blocks: %w", pblk, f.sb.blocksCount, syscall.EIO)
	}
	if b, ok := f.meta.Get(pblk); ok {
		return b, nil
	}
	ep := f.meta.Stamp()
	b := make([]byte, f.sb.blockSize)
	if err := f.readDev(b, int64(pblk)*f.sb.blockSize); err != nil {
		return nil, err
	}
	f.meta.PutAt(ep, pblk, b, len(b))
	return b, nil
}
