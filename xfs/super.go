// Package xfs reads XFS file systems (v4, and v5 with metadata CRCs), in
// pure Go, and serves them through volume.FS: short-form, block, leaf
// and node directories; extent lists and B+tree-mapped files; sparse
// and unwritten extents (read as zeros); local and remote symlinks;
// short-form, leaf and node extended attributes, local and remote values.
//
// Reflinked extents need nothing special to read: two files' extents
// point at the same blocks. The log is never replayed: a file system
// the guest did not unmount cleanly is read as it stands on disk.
//
// Layouts follow the "XFS Algorithms & Data Structures" document of the
// XFS project (3rd edition) and xfsprogs' libxfs headers.
package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
)

var be = binary.BigEndian

// ErrCorrupt wraps structural damage; the FS methods return EIO for it.
var ErrCorrupt = errors.New("corrupt XFS structure")

const (
	incompatFtype   = 1 << 0
	incompatSpinode = 1 << 1
	incompatMetaUID = 1 << 2
	incompatBigtime = 1 << 3
	incompatRepair  = 1 << 4
	incompatNrext64 = 1 << 5
	knownIncompat   = incompatFtype | incompatSpinode | incompatMetaUID | incompatBigtime | incompatRepair | incompatNrext64

	features2Ftype = 0x200
)

// super is what the engine needs of the superblock.
type super struct {
	blockSize   int64
	dblocks     uint64
	rootIno     uint64
	agBlocks    uint64
	agCount     uint32
	inodeSize   int64
	inoPerBlock int64
	blockLog    uint
	agBlkLog    uint
	inoPBLog    uint
	dirBlkSize  int64
	version     int // 4 or 5
	ftype       bool
	nrext64     bool
	icount      uint64
	ifree       uint64
	fdblocks    uint64
	label       string
	needsRepair bool
	logStart    uint64
	logBlocks   uint32
}

func readSuper(dev io.ReaderAt, size int64) (*super, error) {
	b := make([]byte, 512)
	if _, err := dev.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("xfs: reading superblock: %w", err)
	}
	if string(b[0:4]) != "XFSB" {
		return nil, fmt.Errorf("xfs: no XFSB magic: %w", ErrCorrupt)
	}
	s := &super{
		blockSize: int64(be.Uint32(b[4:])), dblocks: be.Uint64(b[8:]), rootIno: be.Uint64(b[56:]),
		agBlocks: uint64(be.Uint32(b[84:])), agCount: be.Uint32(b[88:]),
		inodeSize: int64(be.Uint16(b[104:])), inoPerBlock: int64(be.Uint16(b[106:])),
		blockLog: uint(b[120]), inoPBLog: uint(b[123]), agBlkLog: uint(b[124]),
		icount: be.Uint64(b[128:]), ifree: be.Uint64(b[136:]), fdblocks: be.Uint64(b[144:]),
		version: int(be.Uint16(b[100:]) & 0xf),
	}
	s.label = cstr(b[108:120])
	s.logStart, s.logBlocks = be.Uint64(b[48:]), be.Uint32(b[96:])
	s.dirBlkSize = s.blockSize << b[192]
	switch s.version {
	case 4:
		s.ftype = be.Uint32(b[200:])&features2Ftype != 0
	case 5:
		inc := be.Uint32(b[216:])
		if inc&^knownIncompat != 0 {
			return nil, fmt.Errorf("xfs: incompatible features %#x unknown to offvm: %w", inc&^knownIncompat, syscall.EOPNOTSUPP)
		}
		s.ftype, s.nrext64, s.needsRepair = true, inc&incompatNrext64 != 0, inc&incompatRepair != 0
		if !crcOK(b[:s.sectSize(b)], 224) {
			return nil, fmt.Errorf("xfs: superblock checksum mismatch: %w", ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("xfs: superblock version %d: %w", s.version, syscall.EOPNOTSUPP)
	}
	switch {
	case s.blockSize < 512 || s.blockSize > 65536 || s.blockSize != 1<<s.blockLog,
		s.inodeSize < 256 || s.inodeSize > 2048 || s.inoPerBlock != 1<<s.inoPBLog || s.inodeSize*s.inoPerBlock != s.blockSize,
		s.agBlocks == 0 || s.agBlkLog > 31 || s.agBlocks > 1<<s.agBlkLog || s.agCount == 0,
		s.dirBlkSize > 65536, s.dblocks > uint64(s.agCount)*s.agBlocks:
		return nil, fmt.Errorf("xfs: superblock geometry (block %d, inode %d x %d, ag %d x %d): %w", s.blockSize, s.inodeSize, s.inoPerBlock, s.agCount, s.agBlocks, ErrCorrupt)
	}
	if int64(s.dblocks)*s.blockSize > size {
		return nil, fmt.Errorf("xfs: %d blocks of %d bytes do not fit in %d bytes: %w", s.dblocks, s.blockSize, size, ErrCorrupt)
	}
	return s, nil
}

// sectSize is the superblock's sector size, which its CRC covers.
func (s *super) sectSize(b []byte) int {
	n := int(be.Uint16(b[102:]))
	if n < 512 || n > len(b) {
		return len(b)
	}
	return n
}

// fsbToByte turns a file system block number (AG number in the high
// bits) into a byte offset on the device.
func (s *super) fsbToByte(fsb uint64) (int64, bool) {
	ag := fsb >> s.agBlkLog
	bno := fsb & (1<<s.agBlkLog - 1)
	if ag >= uint64(s.agCount) || bno >= s.agBlocks {
		return 0, false
	}
	return int64(ag*s.agBlocks+bno) * s.blockSize, true
}

// inoToByte is where inode ino lies on the device.
func (s *super) inoToByte(ino uint64) (int64, bool) {
	off := ino & (1<<s.inoPBLog - 1)
	fsb := ino >> s.inoPBLog
	b, ok := s.fsbToByte(fsb)
	if !ok {
		return 0, false
	}
	return b + int64(off)*s.inodeSize, true
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
