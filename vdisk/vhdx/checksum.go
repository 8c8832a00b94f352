package vhdx

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksumOK verifies a CRC-32C stored at b[4:8], computed over b with
// that field taken as zero (headers, region tables, log entries).
func checksumOK(b []byte) bool {
	return binary.LittleEndian.Uint32(b[4:8]) == checksum(b)
}

// checksum computes the CRC-32C of b with b[4:8] taken as zero.
func checksum(b []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:4])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[8:])
}

// setChecksum stores the CRC-32C of b into b[4:8].
func setChecksum(b []byte) {
	binary.LittleEndian.PutUint32(b[4:8], checksum(b))
}
