package ntfs

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"unicode"
	"weak"
)

// upcase is the volume's $UpCase table: filename collation folds case with it.
type upcase [65536]uint16

// loadUpcase reads $UpCase; a short or missing table falls back to Unicode's
// simple upper-case mapping so that lookups still work.
func (v *Volume) loadUpcase() *upcase {
	in, err := v.loadInode(recUpCase)
	if err != nil {
		return unicodeUpcase()
	}
	s := in.find(atData, "")
	if s == nil || s.dataSize < 2*65536 {
		return unicodeUpcase()
	}
	buf := make([]byte, 2*65536)
	if _, err := v.readStream(s, buf, 0); err != nil {
		return unicodeUpcase()
	}
	u := new(upcase)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(buf[2*i:])
	}
	return internUpcase(u, sha256.Sum256(buf))
}

// unicodeUpcase is the fallback table, built once (65,536 calls to
// unicode.ToUpper cost about a millisecond: too much to pay per volume
// opened when listing a library). It is never written.
var unicodeUpcase = sync.OnceValue(func() *upcase {
	u := new(upcase)
	for i := range u {
		r := unicode.ToUpper(rune(i))
		if r > 0xffff {
			r = rune(i)
		}
		u[i] = uint16(r)
	}
	return u
})

// Nearly every volume holds one of a few $UpCase tables (128 KiB each):
// volumes share one copy, dropped once no volume uses it.
var upcases = struct {
	sync.Mutex
	m map[[32]byte]weak.Pointer[upcase]
}{m: map[[32]byte]weak.Pointer[upcase]{}}

func internUpcase(u *upcase, sum [32]byte) *upcase {
	upcases.Lock()
	defer upcases.Unlock()
	if p := upcases.m[sum].Value(); p != nil {
		return p
	}
	for k, w := range upcases.m { // forget tables no volume holds
		if w.Value() == nil {
			delete(upcases.m, k)
		}
	}
	upcases.m[sum] = weak.Make(u)
	return u
}

// collate orders two names as NTFS's COLLATION_FILE_NAME does: upper-cased
// code units first, then length.
func (u *upcase) collate(a, b []uint16) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := u[a[i]], u[b[i]]
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	return cmpInt(len(a), len(b))
}

// collateExact breaks case ties (two POSIX names differing only in case).
func (u *upcase) collateExact(a, b []uint16) int {
	if c := u.collate(a, b); c != 0 {
		return c
	}
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
