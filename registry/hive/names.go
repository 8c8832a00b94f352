package hive

import (
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	maxKeyNameUnits   = 255   // Windows' limit on a key name, in UTF-16 units
	maxValueNameUnits = 16383 // and on a value name
)

// decodeName turns a stored name into a Go string: compressed names are
// Latin-1 (one byte per character, not ASCII: Windows compresses every name
// whose characters are all below U+0100), others UTF-16LE.
func decodeName(b []byte, compressed bool) string {
	if compressed {
		ascii := true
		for _, c := range b {
			if c >= 0x80 {
				ascii = false
				break
			}
		}
		if ascii {
			return string(b)
		}
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// encodeName gives the stored form of a name: Latin-1 when every character
// fits, as Windows does, else UTF-16LE.
func encodeName(s string) (b []byte, compressed bool) {
	latin := true
	for _, r := range s {
		if r > 0xFF {
			latin = false
			break
		}
	}
	if latin {
		b = make([]byte, 0, len(s))
		for _, r := range s {
			b = append(b, byte(r))
		}
		return b, true
	}
	u := utf16.Encode([]rune(s))
	b = make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b, false
}

// utf16Len is a name's length in UTF-16 units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// upcase maps one UTF-16 unit as RtlUpcaseUnicodeChar does for the
// characters that matter: simple one-to-one uppercase mappings within the
// BMP, surrogates untouched.
func upcase(c uint16) uint16 {
	if c < 'a' {
		return c
	}
	if c <= 'z' {
		return c - 'a' + 'A'
	}
	if c < 0x80 || (c >= 0xD800 && c < 0xE000) {
		return c
	}
	u := unicode.ToUpper(rune(c))
	if u > 0xFFFF {
		return c
	}
	return uint16(u)
}

// upcaseUnits is a name as upcased UTF-16 units: the order Windows sorts
// subkey lists in and the input of the lh hash.
func upcaseUnits(s string) []uint16 {
	u := utf16.Encode([]rune(s))
	for i, c := range u {
		u[i] = upcase(c)
	}
	return u
}

// foldName is the key used for case-insensitive lookup.
func foldName(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			ascii = false
			break
		} else if c >= 'a' && c <= 'z' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for _, r := range s {
		if r <= 0xFFFF && (r < 0xD800 || r >= 0xE000) {
			r = rune(upcase(uint16(r)))
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// sameName compares two names case-insensitively.
func sameName(a, b string) bool {
	if a == b {
		return true
	}
	return foldName(a) == foldName(b)
}

// nameHash is the lh list hash: H = 37*H + upcased unit.
func nameHash(s string) uint32 {
	var h uint32
	for _, c := range upcaseUnits(s) {
		h = h*37 + uint32(c)
	}
	return h
}

// compareUnits orders two upcased names.
func compareUnits(a, b []uint16) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

// validName checks a key or value name before it enters the hive.
func validName(s string, key bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := utf16Len(s)
	if key {
		return n > 0 && n <= maxKeyNameUnits && !strings.ContainsRune(s, '\\')
	}
	return n <= maxValueNameUnits
}
