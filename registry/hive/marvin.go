package hive

import (
	"encoding/binary"
	"math/bits"
)

// marvinSeed is the seed Windows uses for the hashes of HvLE log entries.
const marvinSeed = 0x82EF4D887A4E55C5

// marvin32 is Microsoft's Marvin32 hash (as in the .NET runtime's
// Marvin.ComputeHash, returned as the full 64-bit state).
func marvin32(data []byte, seed uint64) uint64 {
	lo, hi := uint32(seed), uint32(seed>>32)
	for len(data) >= 4 {
		lo += binary.LittleEndian.Uint32(data)
		lo, hi = marvinBlock(lo, hi)
		data = data[4:]
	}
	var final uint32 = 0x80
	switch len(data) {
	case 1:
		final = 0x8000 | uint32(data[0])
	case 2:
		final = 0x800000 | uint32(binary.LittleEndian.Uint16(data))
	case 3:
		final = 0x80000000 | uint32(data[2])<<16 | uint32(binary.LittleEndian.Uint16(data))
	}
	lo += final
	lo, hi = marvinBlock(lo, hi)
	lo, hi = marvinBlock(lo, hi)
	return uint64(hi)<<32 | uint64(lo)
}

func marvinBlock(lo, hi uint32) (uint32, uint32) {
	hi ^= lo
	lo = bits.RotateLeft32(lo, 20)
	lo += hi
	hi = bits.RotateLeft32(hi, 9)
	hi ^= lo
	lo = bits.RotateLeft32(lo, 27)
	lo += hi
	hi = bits.RotateLeft32(hi, 19)
	return lo, hi
}
