package xfs

import (
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Superblock fields the writer checks beyond what reading needs.
const (
	roCompatRmapbt = 1 << 1
	sbRblocks      = 24
	sbFdblocks     = 144
	sbQflags       = 176
	sbROCompat     = 212
	sbCRC          = 224
	sbFeatures2    = 200

	versionNlink   = 0x20   // v4: version 2 inodes (32-bit link counts)
	versionDirV2   = 0x2000 // v4: version 2 directories
	features2Attr2 = 0x8    // v4: attribute fork offsets move per inode
)

// writer is the state of a file system opened for writing. Every change
// is one operation under mu: its metadata is gathered in a txn, written
// together, and undone when a device write fails half-way.
type writer struct {
	mu       sync.Mutex
	sb       []byte // the primary superblock's sector
	fdblocks uint64
	reserve  uint64 // blocks never handed out: the kernel's reserve pool
}

// OpenWritable opens the XFS on dev for reading and writing. A file
// system the writer does not keep right opens read-only: ReadOnlyReason
// says why and every Writer method returns EROFS with that reason.
func OpenWritable(dev volume.Device) (*FS, error) {
	f, err := Open(dev)
	if err != nil {
		return nil, err
	}
	sb := make([]byte, 512)
	if _, err := dev.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("xfs: reading superblock: %w", err)
	}
	sb = make([]byte, f.sb.sectSize(sb))
	if _, err := dev.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("xfs: reading superblock: %w", err)
	}
	if f.roReason = f.writeRefusal(sb); f.roReason != "" {
		return f, nil
	}
	f.w = &writer{sb: sb, fdblocks: be.Uint64(sb[sbFdblocks:]),
		reserve: min(f.sb.dblocks/20, 8192) + uint64(f.sb.agCount)*16}
	return f, nil
}

// writeRefusal is why the writer leaves this file system alone, or "".
func (f *FS) writeRefusal(sb []byte) string {
	switch {
	case f.dirty != "":
		return f.dirty + "; read-only: writing would be undone by the log's replay"
	case f.sb.version == 4 && be.Uint16(sb[sbVersionNum:])&(versionNlink|versionDirV2) != versionNlink|versionDirV2:
		return "xfs: v4 file system with version 1 inodes or directories is read-only in offvm"
	case f.sb.version == 4 && be.Uint32(sb[sbFeatures2:])&features2Attr2 == 0:
		return "xfs: v4 file system with attr1 (fixed attribute fork offsets) is read-only in offvm"
	case f.sb.needsRepair:
		return "xfs: the file system is marked needs-repair; run xfs_repair first"
	case be.Uint64(sb[sbRblocks:]) != 0:
		return "xfs: file systems with a realtime section are read-only in offvm"
	case be.Uint16(sb[sbQflags:]) != 0:
		return "xfs: file systems with quotas are read-only in offvm (quota counts would go stale)"
	}
	return ""
}

// begin takes the write lock, or refuses with the read-only reason.
func (f *FS) begin() (*writer, error) {
	if f.w == nil {
		return nil, fmt.Errorf("%s: %w", f.ReadOnlyReason(), syscall.EROFS)
	}
	f.w.mu.Lock()
	return f.w, nil
}

// end drops what the caches held of the changed inode and releases the
// lock. The generation makes a reader that read before the change keep
// its result out of the cache.
func (f *FS) end(inos ...uint64) {
	f.mu.Lock()
	f.gen++
	for _, ino := range inos {
		delete(f.inodes, ino)
		delete(f.dirs, ino)
		delete(f.lists, ino)
	}
	f.mu.Unlock()
	f.w.mu.Unlock()
}

// Sync has nothing to do: every operation is written when it is made.
func (f *FS) Sync() error {
	if f.w == nil {
		return fmt.Errorf("%s: %w", f.ReadOnlyReason(), syscall.EROFS)
	}
	return nil
}

// txn gathers one operation's metadata writes. commit writes them in
// order; when one fails it puts back what the earlier ones replaced, so
// that a transient device error leaves the file system as it was.
type txn struct {
	f      *FS
	writes []pending
}

type pending struct {
	off int64
	b   []byte
}

func (t *txn) put(off int64, b []byte) { t.writes = append(t.writes, pending{off, b}) }

// putCRC sets the CRC32C at crcOff of a v5 metadata block and queues it.
func (t *txn) putCRC(off int64, b []byte, crcOff int) {
	if !t.f.v5() {
		t.put(off, b)
		return
	}
	binary.LittleEndian.PutUint32(b[crcOff:], crc32c(b, crcOff))
	t.put(off, b)
}

func (t *txn) commit() error {
	old := make([][]byte, 0, len(t.writes))
	for _, p := range t.writes {
		o := make([]byte, len(p.b))
		if _, err := t.f.dev.ReadAt(o, p.off); err != nil {
			return fmt.Errorf("xfs: reading %d bytes at %d before writing: %v: %w", len(o), p.off, err, syscall.EIO)
		}
		old = append(old, o)
	}
	for i, p := range t.writes {
		if _, err := t.f.dev.WriteAt(p.b, p.off); err != nil {
			for j := i; j >= 0; j-- { // j == i: a short write may have landed
				t.f.dev.WriteAt(old[j], t.writes[j].off)
			}
			return fmt.Errorf("xfs: writing %d bytes at %d: %v: %w", len(p.b), p.off, err, syscall.EIO)
		}
	}
	return nil
}

// writeData writes file content straight to the device (not undone:
// it lands in blocks the metadata of the failed operation never names,
// or overwrites bytes the caller asked to change).
func (f *FS) writeData(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > int64(f.sb.dblocks)*f.sb.blockSize {
		return fmt.Errorf("xfs: data write of %d bytes at %d outside the file system: %w", len(p), off, ErrCorrupt)
	}
	if _, err := f.dev.WriteAt(p, off); err != nil {
		return fmt.Errorf("xfs: writing %d bytes at %d: %v: %w", len(p), off, err, syscall.EIO)
	}
	return nil
}

// putSuper queues the superblock with its free-block and free-inode
// counts changed (v5 counts are lazy; xfs_repair still compares them).
func (t *txn) putSuper(w *writer, blocks, inodes int64) { t.putSuperCounts(w, blocks, inodes, 0) }

// putSuperCounts also adds icount inodes of new chunks.
func (t *txn) putSuperCounts(w *writer, blocks, inodes, icount int64) {
	if blocks == 0 && inodes == 0 && icount == 0 {
		return
	}
	b := append([]byte(nil), w.sb...)
	addCounts(b, blocks, inodes, icount)
	t.putCRC(0, b, sbCRC)
}

func addCounts(sb []byte, blocks, inodes, icount int64) {
	for _, c := range []struct {
		off int
		d   int64
	}{{sbFdblocks, blocks}, {sbIfree, inodes}, {sbIcount, icount}} {
		be.PutUint64(sb[c.off:], uint64(int64(be.Uint64(sb[c.off:]))+c.d))
	}
}

// committed records a committed operation's counts.
func (w *writer) committed(blocks, inodes int64) { w.committedCounts(blocks, inodes, 0) }

func (w *writer) committedCounts(blocks, inodes, icount int64) {
	addCounts(w.sb, blocks, inodes, icount)
	w.fdblocks = be.Uint64(w.sb[sbFdblocks:])
}
