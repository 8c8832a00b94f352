package ext

import (
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"

	"github.com/offvm/offvm/internal/devio"
	"github.com/offvm/offvm/volume"
)

// Group descriptor flags.
const (
	bgBlockUninit    = 0x2
	compatDirIndex   = 0x20
	roCompatBigalloc = 0x200
)

// writableIncompat and writableROCompat are the features the writer
// keeps right; anything else makes the file system read-only for us.
const (
	writableIncompat = incompatFiletype | incompatExtents | incompat64bit | incompatFlexBG |
		incompatCsumSeed | incompatMetaBG | incompatLargeDir
	writableROCompat = roCompatSparseSuper | roCompatLargeFile | roCompatHugeFile |
		roCompatGdtCsum | roCompatMetadataCsum | roCompatBtreeDir | 0x20 /* dir_nlink */ |
		0x40 /* extra_isize */
)

// writer is the state of a file system opened for writing: the
// superblock and descriptors as raw bytes, written back on each change.
type writer struct {
	mu      sync.Mutex
	sb      []byte   // the primary superblock's 1024 bytes
	gd      [][]byte // each group's descriptor
	seed    uint32   // metadata_csum seed
	csum    bool     // metadata_csum
	gdtCsum bool     // gdt_csum (uninit_bg)
	gen     uint32   // next inode generation
}

// OpenWritable opens the file system on dev for reading and writing.
// When the file system has something the writer does not keep right it
// is still opened, read-only: ReadOnlyReason says why, and every Writer
// method returns EROFS with that reason.
func OpenWritable(dev volume.Device) (*FS, error) {
	f, err := Open(dev)
	if err != nil {
		return nil, err
	}
	f.roReason = f.writeRefusal()
	if f.roReason != "" {
		return f, nil
	}
	if err := f.loadWriter(); err != nil {
		return nil, err
	}
	return f, nil
}

// ReadOnlyReason is empty when the file system is writable, else why not.
func (f *FS) ReadOnlyReason() string {
	if f.w == nil && f.roReason == "" {
		return "ext: opened with Open, which is read-only (use OpenWritable)"
	}
	return f.roReason
}

func (f *FS) writeRefusal() string {
	s := f.sb
	switch {
	case s.incompat&incompatRecover != 0:
		return "ext: the journal needs recovery (needs_recovery); writing would be undone by its replay"
	case s.incompat&incompatExtents == 0:
		return "ext: ext2/ext3 block-mapped files are read-only in offvm"
	case s.roCompat&roCompatBigalloc != 0:
		return "ext: bigalloc file systems are read-only in offvm"
	case s.incompat&incompatInlineData != 0:
		return "ext: inline_data file systems are read-only in offvm"
	case s.incompat&incompatEncrypt != 0:
		return "ext: encrypt file systems are read-only in offvm"
	case s.incompat&incompatCasefold != 0:
		return "ext: casefold file systems are read-only in offvm"
	case s.incompat&^writableIncompat != 0:
		return fmt.Sprintf("ext: incompatible features %#x are read-only in offvm", s.incompat&^writableIncompat)
	case s.roCompat&^writableROCompat != 0:
		return fmt.Sprintf("ext: ro_compat features %#x are read-only in offvm", s.roCompat&^writableROCompat)
	case s.raw.RevLevel < 1 || s.inodeSize < 256:
		return "ext: inodes smaller than 256 bytes are read-only in offvm"
	case int64(s.blocksPerGroup) > s.blockSize*8 || s.blocksPerGroup%8 != 0 || s.inodesPerGroup%8 != 0 ||
		s.raw.ClustersPerGroup != s.blocksPerGroup:
		return fmt.Sprintf("ext: %d blocks and %d inodes per group do not fit one bitmap block each; run e2fsck first", s.blocksPerGroup, s.inodesPerGroup)
	case s.raw.State&1 == 0 || s.raw.State&2 != 0:
		return "ext: the file system was not cleanly unmounted or has errors; run e2fsck first"
	}
	return ""
}

func (f *FS) loadWriter() error {
	s := f.sb
	w := &writer{sb: make([]byte, 1024)}
	if err := f.readDev(w.sb, superblockOffset); err != nil {
		return err
	}
	w.csum = s.roCompat&roCompatMetadataCsum != 0
	w.gdtCsum = s.roCompat&roCompatGdtCsum != 0
	if s.incompat&incompatCsumSeed != 0 {
		w.seed = binary.LittleEndian.Uint32(w.sb[0x270:])
	} else {
		w.seed = crc32cRaw(^uint32(0), w.sb[104:120])
	}
	w.gen = binary.LittleEndian.Uint32(w.sb[0x3FC:]) | 1
	perBlock := uint64(s.blockSize / s.descSize)
	buf := make([]byte, s.blockSize)
	for nr := uint64(0); nr*perBlock < uint64(s.groups); nr++ {
		if err := f.readDev(buf, int64(s.descBlock(nr))*s.blockSize); err != nil {
			return err
		}
		for i := uint64(0); i < perBlock && nr*perBlock+i < uint64(s.groups); i++ {
			w.gd = append(w.gd, append([]byte(nil), buf[i*uint64(s.descSize):(i+1)*uint64(s.descSize)]...))
		}
	}
	for g := range w.gd {
		if f.groups[g].bad != nil {
			f.roReason = fmt.Sprintf("ext: group %d is damaged (%v); run e2fsck first", g, f.groups[g].bad)
			return nil
		}
	}
	f.w = w
	return nil
}

// begin takes the write lock, or refuses with the read-only reason. It
// excludes readers too: a change is several device writes, and a reader
// between them would see (and cache) a half-made change.
func (f *FS) begin() (*writer, error) {
	if f.w == nil {
		return nil, fmt.Errorf("%s: %w", f.ReadOnlyReason(), syscall.EROFS)
	}
	f.rw.Lock()
	f.w.mu.Lock()
	return f.w, nil
}

// end drops every cache (they hold what was on disk before the change)
// and releases the lock.
func (f *FS) end() {
	f.inodes.Clear()
	f.dirs.Clear()
	f.meta.Clear()
	f.w.mu.Unlock()
	f.rw.Unlock()
}

// writeDev writes p at off; a short write is EIO.
func (f *FS) writeDev(p []byte, off int64) error {
	if err := devio.Write(f.dev, p, off); err != nil {
		return fmt.Errorf("ext: %w", err)
	}
	return nil
}

func (f *FS) writeBlock(pblk uint64, b []byte) error {
	return f.writeDev(b, int64(pblk)*f.sb.blockSize)
}

func (f *FS) readBlock(pblk uint64) ([]byte, error) {
	if pblk == 0 || pblk >= f.sb.blocksCount {
		return nil, fmt.Errorf("ext: block %d is outside the %d blocks: %w", pblk, f.sb.blocksCount, syscall.EIO)
	}
	b := make([]byte, f.sb.blockSize)
	return b, f.readDev(b, int64(pblk)*f.sb.blockSize)
}

// flushSuper writes the primary superblock with its free counts.
func (f *FS) flushSuper() error {
	f.w.superCsum()
	return f.writeDev(f.w.sb, superblockOffset)
}

// flushDesc writes group g's descriptor (primary table only, as the
// kernel does; e2fsck does not compare backups' counters).
func (f *FS) flushDesc(g uint32) error {
	s := f.sb
	f.w.descCsum(g)
	perBlock := uint64(s.blockSize / s.descSize)
	off := int64(s.descBlock(uint64(g)/perBlock))*s.blockSize + int64(uint64(g)%perBlock)*s.descSize
	return f.writeDev(f.w.gd[g], off)
}

// Sync has nothing to do: every change is written when it is made.
func (f *FS) Sync() error {
	if f.w == nil {
		return fmt.Errorf("%s: %w", f.ReadOnlyReason(), syscall.EROFS)
	}
	return nil
}

// writerStatFS reports the counters as the writer keeps them.
func (f *FS) writerStatFS() volume.StatFS {
	w := f.w
	w.mu.Lock()
	defer w.mu.Unlock()
	free := uint64(le.Uint32(w.sb[12:]))
	if f.sb.has64bit() {
		free |= uint64(le.Uint32(w.sb[0x158:])) << 32
	}
	return volume.StatFS{
		BlockSize:  uint32(f.sb.blockSize),
		Blocks:     f.sb.blocksCount,
		BlocksFree: min(free, f.sb.blocksCount),
		Files:      uint64(f.sb.inodesCount),
		FilesFree:  min(uint64(le.Uint32(w.sb[16:])), uint64(f.sb.inodesCount)),
		NameMaxLen: 255,
	}
}
