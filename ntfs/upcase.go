package ntfs

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"unicode"
	"weak"
)

// upcase is the volume's $UpCase table: filename collation folds case with it.
type upcase [65536]uint16

// loadUpcase reads $UpCase; a short or missing table falls back to Unicode's
// simple upper-case mapping so that lookups still work. The table is read
// into a pooled buffer and matched against the tables already in use:
// volumes share one copy, and a volume whose table is one of them (nearly
// every volume: Windows writes a few) allocates nothing.
func (v *Volume) loadUpcase() *upcase {
	in, err := v.loadInode(recUpCase)
	if err != nil {
		return unicodeUpcase()
	}
	s := in.find(atData, "")
	if s == nil || s.dataSize < 2*65536 {
		return unicodeUpcase()
	}
	buf := upcaseBufs.Get().(*[upcaseBytes]byte)
	defer upcaseBufs.Put(buf)
	if _, err := v.readStream(s, buf[:], 0); err != nil {
		return unicodeUpcase()
	}
	return internUpcase(buf)
}

// upcaseBytes is the size of an $UpCase table on disk.
const upcaseBytes = 2 * 65536

var upcaseBufs = sync.Pool{New: func() any { return new([upcaseBytes]byte) }}

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

// sharedUpcase is one $UpCase table in use, decoded, with its bytes as on
// disk to recognize it on another volume. Volumes hold &table, which keeps
// the whole of it alive.
type sharedUpcase struct {
	table upcase
	raw   [upcaseBytes]byte
}

// Nearly every volume holds one of a few $UpCase tables (128 KiB each):
// volumes share one copy, dropped once no volume uses it. Tables are found
// by a hash of their bytes (maphash: a sha256 of each table was a tenth of
// the CPU of listing a library of Windows images), then compared whole.
var upcases = struct {
	sync.Mutex
	seed maphash.Seed
	m    map[uint64][]weak.Pointer[sharedUpcase]
}{seed: maphash.MakeSeed(), m: map[uint64][]weak.Pointer[sharedUpcase]{}}

func internUpcase(raw *[upcaseBytes]byte) *upcase {
	sum := maphash.Bytes(upcases.seed, raw[:])
	upcases.Lock()
	defer upcases.Unlock()
	for _, w := range upcases.m[sum] {
		if p := w.Value(); p != nil && p.raw == *raw {
			return &p.table
		}
	}
	for k, ws := range upcases.m { // forget tables no volume holds
		live := ws[:0]
		for _, w := range ws {
			if w.Value() != nil {
				live = append(live, w)
			}
		}
		if len(live) == 0 {
			delete(upcases.m, k)
		} else {
			upcases.m[k] = live
		}
	}
	p := &sharedUpcase{raw: *raw}
	for i := range p.table {
		p.table[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	upcases.m[sum] = append(upcases.m[sum], weak.Make(p))
	return &p.table
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
