package fat

import (
	"encoding/binary"
	"unicode/utf16"
)

// Long file names (VFAT): up to 20 entries of 13 UTF-16 units each,
// stored last part first, each carrying the checksum of its 8.3 entry.
const (
	lfnLast     = 0x40
	lfnUnits    = 13
	maxLFNParts = 20
	maxNameLen  = 255
)

// lfnCharOffsets are where the 13 UTF-16 units sit in an LFN entry.
var lfnCharOffsets = [lfnUnits]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

func lfnChecksum(n [11]byte) byte {
	var sum byte
	for _, c := range n {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// lfnEncode returns the LFN entries for name in on-disk order.
func lfnEncode(name string, sum byte) [][direntSize]byte {
	units := utf16.Encode([]rune(name))
	parts := (len(units) + lfnUnits - 1) / lfnUnits
	out := make([][direntSize]byte, 0, parts)
	for k := parts; k >= 1; k-- {
		var e [direntSize]byte
		e[0] = byte(k)
		if k == parts {
			e[0] |= lfnLast
		}
		e[11] = attrLFN
		e[13] = sum
		for i, off := range lfnCharOffsets {
			j := (k-1)*lfnUnits + i
			u := uint16(0xffff) // padding after the terminator
			switch {
			case j < len(units):
				u = units[j]
			case j == len(units):
				u = 0
			}
			binary.LittleEndian.PutUint16(e[off:], u)
		}
		out = append(out, e)
	}
	return out
}

// lfnUnitsOf copies the 13 name units of one LFN entry into dst.
func lfnUnitsOf(b []byte, dst []uint16) {
	for i, off := range lfnCharOffsets {
		dst[i] = binary.LittleEndian.Uint16(b[off:])
	}
}

// lfnDecode turns collected units into a name, stopping at the terminator.
func lfnDecode(units []uint16) string {
	for i, u := range units {
		if u == 0 {
			units = units[:i]
			break
		}
	}
	return string(utf16.Decode(units))
}
