package winreg

import (
	"encoding/binary"
	"unicode/utf16"

	"github.com/offvm/offvm/volume"
)

func resolve(r *Registry, p string) (bool, error) {
	a, err := volume.Resolve(r.FS, p)
	if err != nil {
		return false, err
	}
	return a.Mode.IsRegular(), nil
}

// decodeString reads REG_SZ data: UTF-16LE up to the first NUL.
func decodeString(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
