package hive

import (
	"encoding/binary"
	"unicode/utf16"
)

// StringValue reads a REG_SZ or REG_EXPAND_SZ value as text (up to its
// first NUL); "" when the value is absent, of another type or unreadable.
// Inventory readers use it where a missing value simply means "unknown".
func (k *Key) StringValue(name string) string {
	v, err := k.Value(name)
	if err != nil || (v.Type() != RegSz && v.Type() != RegExpandSz) {
		return ""
	}
	d, err := v.Data()
	if err != nil {
		return ""
	}
	u := make([]uint16, 0, len(d)/2)
	for i := 0; i+1 < len(d); i += 2 {
		c := binary.LittleEndian.Uint16(d[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// DwordValue reads a REG_DWORD value; false when it is absent, of another
// type or not four bytes long.
func (k *Key) DwordValue(name string) (uint32, bool) {
	v, err := k.Value(name)
	if err != nil || v.Type() != RegDword {
		return 0, false
	}
	d, err := v.Data()
	if err != nil || len(d) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(d), true
}
