package hive

import (
	"encoding/binary"
	"fmt"
)

const (
	baseBlockSize = 4096
	hbinHeaderLen = 32
	// fileTypePrimary and the log types are the base block's "file type".
	fileTypePrimary = 0
	fileTypeLogOld  = 1
	fileTypeLogOld2 = 2
	fileTypeLogNew  = 6
)

// baseBlock is the part of the 4096-byte regf header the engine uses. The
// raw first sector is kept so fields we do not interpret (GUIDs, flags, the
// file name) survive a rewrite.
type baseBlock struct {
	seq1, seq2   uint32
	timestamp    uint64
	major, minor uint32
	fileType     uint32
	root         uint32
	binsSize     uint32
	raw          [512]byte
}

func decodeBaseBlock(b []byte) (baseBlock, error) {
	var bb baseBlock
	if len(b) < 512 {
		return bb, fmt.Errorf("base block is %d bytes, want 512: %w", len(b), ErrCorrupt)
	}
	if string(b[0:4]) != "regf" {
		return bb, fmt.Errorf("no regf signature (found %q): %w", b[0:4], ErrCorrupt)
	}
	copy(bb.raw[:], b[:512])
	le := binary.LittleEndian
	bb.seq1 = le.Uint32(b[4:])
	bb.seq2 = le.Uint32(b[8:])
	bb.timestamp = le.Uint64(b[12:])
	bb.major = le.Uint32(b[20:])
	bb.minor = le.Uint32(b[24:])
	bb.fileType = le.Uint32(b[28:])
	bb.root = le.Uint32(b[36:])
	bb.binsSize = le.Uint32(b[40:])
	if bb.major != 1 {
		return bb, fmt.Errorf("regf major version %d, only 1 is known: %w", bb.major, ErrCorrupt)
	}
	return bb, nil
}

// checksumOK says whether the XOR-32 checksum of the first 508 bytes matches.
func checksumOK(b []byte) bool {
	return len(b) >= 512 && xorSum(b) == binary.LittleEndian.Uint32(b[508:])
}

// xorSum is the base block checksum. Windows replaces 0 by 1 and -1 by -2
// so that a zeroed or all-ones sector never passes.
func xorSum(b []byte) uint32 {
	var c uint32
	for i := 0; i < 508; i += 4 {
		c ^= binary.LittleEndian.Uint32(b[i:])
	}
	switch c {
	case 0:
		c = 1
	case 0xFFFFFFFF:
		c = 0xFFFFFFFE
	}
	return c
}

// encode writes the base block into a 4096-byte header, keeping the unknown
// fields of the original first sector.
func (bb *baseBlock) encode() []byte {
	out := make([]byte, baseBlockSize)
	copy(out, bb.raw[:])
	le := binary.LittleEndian
	copy(out[0:4], "regf")
	le.PutUint32(out[4:], bb.seq1)
	le.PutUint32(out[8:], bb.seq2)
	le.PutUint64(out[12:], bb.timestamp)
	le.PutUint32(out[20:], bb.major)
	le.PutUint32(out[24:], bb.minor)
	le.PutUint32(out[28:], bb.fileType)
	le.PutUint32(out[32:], 1) // format: direct memory load
	le.PutUint32(out[36:], bb.root)
	le.PutUint32(out[40:], bb.binsSize)
	le.PutUint32(out[44:], 1) // clustering factor
	le.PutUint32(out[508:], xorSum(out))
	return out
}
