package xfs

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is XFS's metadata checksum of b, computed with the four bytes
// at off (the checksum field itself) taken as zero. XFS stores it
// little-endian, unlike everything else in the file system.
func crc32c(b []byte, off int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[off+4:])
}

// skipCRC lets the fuzz target past the checksums into the structures
// behind them; nothing else sets it.
var skipCRC = false

func crcOK(b []byte, off int) bool {
	return off+4 <= len(b) && (skipCRC || crc32c(b, off) == binary.LittleEndian.Uint32(b[off:]))
}

// setCRC stores b's checksum at off.
func setCRC(b []byte, off int) { binary.LittleEndian.PutUint32(b[off:], crc32c(b, off)) }
