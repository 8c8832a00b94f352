package ntfs

import (
	"encoding/binary"
	"testing"
	"unicode"
)

// rawUpcase is an $UpCase table as on disk: Unicode's simple upper case,
// with the code units in change mapped to themselves.
func rawUpcase(change ...uint16) *[upcaseBytes]byte {
	raw := new([upcaseBytes]byte)
	for i := range 65536 {
		u := uint16(i)
		if r := unicode.ToUpper(rune(i)); r <= 0xffff {
			u = uint16(r)
		}
		binary.LittleEndian.PutUint16(raw[2*i:], u)
	}
	for _, c := range change {
		binary.LittleEndian.PutUint16(raw[2*int(c):], c)
	}
	return raw
}

// Volumes with the same $UpCase bytes share one decoded table; a table
// differing in one code unit gets its own, decoded from its own bytes.
func TestInternUpcaseSharesEqualTables(t *testing.T) {
	a1, a2 := internUpcase(rawUpcase()), internUpcase(rawUpcase())
	if a1 != a2 {
		t.Fatal("two volumes with the same $UpCase table hold two copies")
	}
	b := internUpcase(rawUpcase('q'))
	if b == a1 {
		t.Fatal("a table differing in one code unit was taken for another")
	}
	if a1['q'] != 'Q' || b['q'] != 'q' || b['a'] != 'A' || a1[0xe4] != 0xc4 {
		t.Fatalf("decoded wrong: a['q']=%#x b['q']=%#x b['a']=%#x a[0xe4]=%#x", a1['q'], b['q'], b['a'], a1[0xe4])
	}
	if a1.collate([]uint16{'w', 'i', 'n'}, []uint16{'W', 'I', 'N'}) != 0 || b.collate([]uint16{'q'}, []uint16{'Q'}) == 0 {
		t.Fatal("collation does not follow the tables")
	}
}
