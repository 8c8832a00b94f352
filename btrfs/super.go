// Package btrfs reads btrfs file systems, in pure Go, and serves them
// through volume.FS, read-only: the default subvolume as the tree, with
// the subvolumes and snapshots inside it as directories; inline, regular
// and preallocated extents; zlib, LZO and zstd compression; metadata and
// data checksums verified (crc32c or SHA-256), a mismatch being EIO that
// names the file.
//
// Only single-device file systems are read (SINGLE and DUP profiles);
// the log tree of an unclean shutdown is not replayed.
//
// Layouts follow the btrfs documentation's "On-disk format" pages and
// btrfs-progs' kernel-shared/ctree.h.
package btrfs

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"syscall"
)

var le = binary.LittleEndian

// ErrCorrupt wraps structural damage (EIO through the FS methods).
var ErrCorrupt = errors.New("corrupt btrfs structure")

const superOffset = 0x10000

const (
	csumCRC32C = 0
	csumSHA256 = 2
)

type super struct {
	fsid       [16]byte
	generation uint64
	root       uint64
	chunkRoot  uint64
	totalBytes uint64
	bytesUsed  uint64
	numDevices uint64
	sectorSize uint32
	nodeSize   uint32
	csumType   uint16
	rootLevel  uint8
	chunkLevel uint8
	label      string
	sysChunks  []byte
	metaUUID   [16]byte
	incompat   uint64
}

const incompatMetadataUUID = 1 << 10

func readSuper(dev io.ReaderAt) (*super, error) {
	b := make([]byte, 4096)
	if _, err := dev.ReadAt(b, superOffset); err != nil {
		return nil, fmt.Errorf("btrfs: reading superblock: %w", err)
	}
	if string(b[0x40:0x48]) != "_BHRfS_M" {
		return nil, fmt.Errorf("btrfs: no superblock magic: %w", ErrCorrupt)
	}
	s := &super{
		generation: le.Uint64(b[0x48:]), root: le.Uint64(b[0x50:]), chunkRoot: le.Uint64(b[0x58:]),
		totalBytes: le.Uint64(b[0x70:]), bytesUsed: le.Uint64(b[0x78:]), numDevices: le.Uint64(b[0x88:]),
		sectorSize: le.Uint32(b[0x90:]), nodeSize: le.Uint32(b[0x94:]), incompat: le.Uint64(b[0xbc:]),
		csumType: le.Uint16(b[0xc4:]), rootLevel: b[0xc6], chunkLevel: b[0xc7],
	}
	copy(s.fsid[:], b[0x20:])
	copy(s.metaUUID[:], b[0x23b:])
	s.label = cstr(b[0x12b : 0x12b+256])
	if s.csumType != csumCRC32C && s.csumType != csumSHA256 {
		return nil, fmt.Errorf("btrfs: checksum type %d (xxhash64, blake2b) not supported by offvm: %w", s.csumType, syscall.EOPNOTSUPP)
	}
	if !s.csumOK(b[:4096]) {
		return nil, fmt.Errorf("btrfs: superblock checksum mismatch: %w", ErrCorrupt)
	}
	n := le.Uint32(b[0xa0:])
	if n > 2048 || s.sectorSize < 4096 || s.sectorSize > 65536 || s.sectorSize&(s.sectorSize-1) != 0 ||
		s.nodeSize < s.sectorSize || s.nodeSize > 65536 || s.nodeSize&(s.nodeSize-1) != 0 {
		return nil, fmt.Errorf("btrfs: superblock geometry (sector %d, node %d, sys array %d): %w", s.sectorSize, s.nodeSize, n, ErrCorrupt)
	}
	if s.numDevices != 1 {
		return nil, fmt.Errorf("btrfs: %d devices: offvm reads single-device btrfs only: %w", s.numDevices, syscall.EOPNOTSUPP)
	}
	s.sysChunks = append([]byte(nil), b[0x32b:0x32b+n]...)
	return s, nil
}

// treeFSID is the fsid that tree blocks carry (metadata_uuid when set).
func (s *super) treeFSID() [16]byte {
	if s.incompat&incompatMetadataUUID != 0 {
		return s.metaUUID
	}
	return s.fsid
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// csum is the checksum of b as btrfs stores it (first bytes of 32).
func (s *super) csum(b []byte) []byte {
	if s.csumType == csumSHA256 {
		h := sha256.Sum256(b)
		return h[:]
	}
	out := make([]byte, 4)
	le.PutUint32(out, crc32.Checksum(b, castagnoli))
	return out
}

func (s *super) csumSize() int {
	if s.csumType == csumSHA256 {
		return 32
	}
	return 4
}

// csumOK checks a block whose first 32 bytes hold the checksum of the rest.
func (s *super) csumOK(b []byte) bool {
	c := s.csum(b[32:])
	return string(c) == string(b[:len(c)])
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
