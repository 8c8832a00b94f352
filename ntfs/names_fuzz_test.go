package ntfs

import (
	"testing"
	"unicode/utf16"
)

// FuzzDecodeName checks decodeName against utf16.Decode, the definition
// it replaces, on any bytes (odd lengths, lone and swapped surrogates).
func FuzzDecodeName(f *testing.F) {
	for _, s := range []string{"", "a", "System32", "日本語", "\U0001F600", "ä-ß"} {
		f.Add(nameBytes(utf16.Encode([]rune(s))))
	}
	for _, raw := range [][]byte{{0x00, 0xd8}, {0x00, 0xdc, 0x00, 0xd8}, {0x3d, 0xd8, 0x41, 0x00}, {0x41}, {0xfd, 0xff}} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		if got, want := decodeName(b), string(utf16.Decode(u)); got != want {
			t.Fatalf("decodeName(% x) = %q, want %q", b, got, want)
		}
	})
}
