package ext

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
)

// superblockOffset is where the primary superblock lives, whatever the
// block size.
const superblockOffset = 1024

const superMagic = 0xEF53

// Feature bits (Documentation/filesystems/ext4/super.rst).
const (
	compatHasJournal   = 0x4
	compatSparseSuper2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatBtreeDir     = 0x4
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatMetadataCsum = 0x400
)

// incompatKnown are the incompatible features this reader understands;
// any other bit means the layout may differ in ways we cannot see, so
// Open refuses, as the kernel refuses to mount. dirdata (Lustre) is left
// out on purpose: it puts data after names in directory entries.
const incompatKnown = incompatCompression | incompatFiletype | incompatRecover |
	incompatMetaBG | incompatExtents | incompat64bit | incompatMMP | incompatFlexBG |
	incompatEAInode | incompatCsumSeed | incompatLargeDir | incompatInlineData |
	incompatEncrypt | incompatCasefold

// ext3Incompat and ext3ROCompat are what an ext3 driver accepts; a file
// system using anything more is ext4 (blkid draws the same line).
const (
	ext3Incompat = incompatFiletype | incompatRecover | incompatMetaBG
	ext3ROCompat = roCompatSparseSuper | roCompatLargeFile | roCompatBtreeDir
)

// rawSuper is the on-disk superblock up to s_backup_bgs.
type rawSuper struct {
	InodesCount       uint32 // 0
	BlocksCountLo     uint32
	RBlocksCountLo    uint32
	FreeBlocksCountLo uint32
	FreeInodesCount   uint32
	FirstDataBlock    uint32 // 20
	LogBlockSize      uint32
	LogClusterSize    uint32
	BlocksPerGroup    uint32 // 32
	ClustersPerGroup  uint32
	InodesPerGroup    uint32 // 40
	Mtime, Wtime      uint32
	MntCount          uint16
	MaxMntCount       uint16
	Magic             uint16 // 56
	State             uint16
	Errors            uint16
	MinorRevLevel     uint16
	LastCheck         uint32 // 64
	CheckInterval     uint32
	CreatorOS         uint32
	RevLevel          uint32 // 76
	DefResUID         uint16
	DefResGID         uint16
	FirstIno          uint32 // 84
	InodeSize         uint16 // 88
	BlockGroupNr      uint16
	FeatureCompat     uint32 // 92
	FeatureIncompat   uint32
	FeatureROCompat   uint32
	UUID              [16]byte // 104
	VolumeName        [16]byte // 120
	LastMounted       [64]byte // 136
	AlgorithmBitmap   uint32   // 200
	PreallocBlocks    uint8
	PreallocDirBlocks uint8
	ReservedGDTBlocks uint16
	JournalUUID       [16]byte // 208
	JournalInum       uint32   // 224
	JournalDev        uint32
	LastOrphan        uint32
	HashSeed          [4]uint32 // 236
	DefHashVersion    uint8     // 252
	JnlBackupType     uint8
	DescSize          uint16 // 254
	DefaultMountOpts  uint32 // 256
	FirstMetaBG       uint32 // 260
	MkfsTime          uint32
	JnlBlocks         [17]uint32 // 268
	BlocksCountHi     uint32     // 336
	RBlocksCountHi    uint32
	FreeBlocksCountHi uint32
	MinExtraIsize     uint16 // 348
	WantExtraIsize    uint16
	Flags             uint32 // 352
	_                 [588 - 356]byte
	BackupBGs         [2]uint32 // 588
}

// superblock is the validated geometry the rest of the engine uses.
type superblock struct {
	raw            rawSuper
	blockSize      int64
	blocksCount    uint64
	freeBlocks     uint64
	inodesCount    uint32
	inodesPerGroup uint32
	blocksPerGroup uint32
	firstDataBlock uint64
	inodeSize      int64
	descSize       int64
	groups         uint32
	incompat       uint32
	roCompat       uint32
	compat         uint32
}

func (s *superblock) has64bit() bool { return s.incompat&incompat64bit != 0 }

// readSuper reads and checks the primary superblock. Every number later
// used to size a table or an allocation is checked here against the
// device, so a hostile superblock gives an error rather than an OOM.
func readSuper(dev io.ReaderAt, devSize int64) (*superblock, error) {
	buf := make([]byte, 1024)
	if _, err := dev.ReadAt(buf, superblockOffset); err != nil {
		return nil, fmt.Errorf("ext: reading superblock: %v: %w", err, syscall.EIO)
	}
	s := &superblock{}
	if err := binary.Read(bytes.NewReader(buf), binary.LittleEndian, &s.raw); err != nil {
		return nil, fmt.Errorf("ext: decoding superblock: %v: %w", err, syscall.EIO)
	}
	r := &s.raw
	if r.Magic != superMagic {
		return nil, fmt.Errorf("ext: no ext2/3/4 superblock (magic %#04x): %w", r.Magic, syscall.EINVAL)
	}
	s.compat, s.incompat, s.roCompat = r.FeatureCompat, r.FeatureIncompat, r.FeatureROCompat
	if s.incompat&incompatJournalDev != 0 {
		return nil, fmt.Errorf("ext: this is an external journal device, not a file system: %w", syscall.EINVAL)
	}
	if unknown := s.incompat &^ incompatKnown; unknown != 0 {
		return nil, fmt.Errorf("ext: unsupported incompatible features %#x: %w", unknown, syscall.EIO)
	}
	if r.LogBlockSize > 6 {
		return nil, fmt.Errorf("ext: block size 2^(10+%d) is beyond 64 KiB: %w", r.LogBlockSize, syscall.EIO)
	}
	s.blockSize = 1024 << r.LogBlockSize
	if err := s.geometry(devSize); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *superblock) geometry(devSize int64) error {
	r := &s.raw
	bs := s.blockSize
	s.inodeSize, s.descSize = 128, 32
	if r.RevLevel >= 1 {
		s.inodeSize = int64(r.InodeSize)
	}
	if s.inodeSize < 128 || s.inodeSize > bs || s.inodeSize&(s.inodeSize-1) != 0 {
		return fmt.Errorf("ext: inode size %d: %w", s.inodeSize, syscall.EIO)
	}
	s.blocksCount = uint64(r.BlocksCountLo)
	s.freeBlocks = uint64(r.FreeBlocksCountLo)
	if s.has64bit() {
		s.blocksCount |= uint64(r.BlocksCountHi) << 32
		s.freeBlocks |= uint64(r.FreeBlocksCountHi) << 32
		s.descSize = int64(r.DescSize)
		if s.descSize < 64 || s.descSize > 1024 || s.descSize&(s.descSize-1) != 0 {
			return fmt.Errorf("ext: group descriptor size %d: %w", s.descSize, syscall.EIO)
		}
	}
	s.firstDataBlock = uint64(r.FirstDataBlock)
	s.inodesCount, s.inodesPerGroup, s.blocksPerGroup = r.InodesCount, r.InodesPerGroup, r.BlocksPerGroup
	switch {
	case s.blocksPerGroup == 0 || s.inodesPerGroup == 0:
		return fmt.Errorf("ext: %d blocks and %d inodes per group: %w", s.blocksPerGroup, s.inodesPerGroup, syscall.EIO)
	case int64(s.inodesPerGroup) > bs*8:
		return fmt.Errorf("ext: %d inodes per group do not fit a bitmap block: %w", s.inodesPerGroup, syscall.EIO)
	case s.blocksCount <= s.firstDataBlock:
		return fmt.Errorf("ext: %d blocks, first data block %d: %w", s.blocksCount, s.firstDataBlock, syscall.EIO)
	case s.blocksCount > uint64(1)<<62/uint64(bs): // byte offsets must fit an int64
		return fmt.Errorf("ext: %d blocks: %w", s.blocksCount, syscall.EIO)
	}
	groups := (s.blocksCount - s.firstDataBlock + uint64(s.blocksPerGroup) - 1) / uint64(s.blocksPerGroup)
	// The descriptor table must fit the device: this bounds what Open
	// allocates for it by the real size of the partition.
	if groups > 1<<32-1 || int64(groups)*s.descSize > devSize {
		return fmt.Errorf("ext: %d block groups do not fit a %d-byte device: %w", groups, devSize, syscall.EIO)
	}
	s.groups = uint32(groups)
	if uint64(s.inodesCount) > groups*uint64(s.inodesPerGroup) || s.inodesCount < 2 {
		return fmt.Errorf("ext: %d inodes in %d groups of %d: %w", s.inodesCount, groups, s.inodesPerGroup, syscall.EIO)
	}
	return nil
}

// hasSuper tells whether group g holds a superblock backup (and so, in a
// meta_bg file system, whether its descriptor block comes after it).
func (s *superblock) hasSuper(g uint64) bool {
	switch {
	case g == 0:
		return true
	case s.compat&compatSparseSuper2 != 0:
		return g == uint64(s.raw.BackupBGs[0]) || g == uint64(s.raw.BackupBGs[1])
	case g <= 1 || s.roCompat&roCompatSparseSuper == 0:
		return true
	case g&1 == 0:
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

func isPower(g, base uint64) bool {
	for g%base == 0 {
		g /= base
	}
	return g == 1
}

// label is the volume name without its NUL padding.
func (s *superblock) label() string {
	return string(bytes.TrimRight(s.raw.VolumeName[:], "\x00"))
}

// typeName follows blkid: ext4 when a feature beyond ext3's is on, ext3
// when there is a journal, else ext2.
func (s *superblock) typeName() string {
	switch {
	case s.incompat&^ext3Incompat != 0 || s.roCompat&^ext3ROCompat != 0:
		return "ext4"
	case s.compat&compatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}
