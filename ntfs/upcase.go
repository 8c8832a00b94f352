package ntfs

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"unicode"
	"weak"
)

// upcase is the volume's $UpCase table: filename collation folds case with
// it. The table is 128 KiB on disk, but the names a listing looks up
// (Windows, System32, config, SYSTEM) use only its first entries: those
// are read when the volume is opened, from the volume's own table, and the
// rest only when a name with a higher code unit is folded (the one big
// read of opening a volume, and a tenth of the CPU of listing a library
// of Windows images).
type upcase struct {
	low [upcaseLow]uint16
	// all returns the whole table, read on first use; safe for
	// concurrent callers (sync.OnceValue).
	all func() *upcaseTable
}

// upcaseTable is a whole $UpCase table, decoded.
type upcaseTable [65536]uint16

// upcaseLow is how many entries are read at open: 4 KiB of the table,
// every code unit below U+0800 (Latin, Greek, Cyrillic, Hebrew, Arabic).
const upcaseLow = 2048

// upper folds code unit c with the table.
func (u *upcase) upper(c uint16) uint16 {
	if c < upcaseLow {
		return u.low[c]
	}
	return u.all()[c]
}

// upcaseOf is the table t, all of it already in memory.
func upcaseOf(t *upcaseTable) *upcase {
	u := &upcase{all: func() *upcaseTable { return t }}
	copy(u.low[:], t[:upcaseLow])
	return u
}

// loadUpcase reads the first part of $UpCase; a short or missing table
// falls back to Unicode's simple upper-case mapping so that lookups still
// work. The rest is read on first need by loadUpcaseRest.
func (v *Volume) loadUpcase() *upcase {
	s := v.upcaseStream()
	if s == nil {
		return unicodeUpcase()
	}
	var raw [2 * upcaseLow]byte
	if _, err := v.readStream(s, raw[:], 0); err != nil {
		return unicodeUpcase()
	}
	u := &upcase{}
	for i := range u.low {
		u.low[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	u.all = sync.OnceValue(func() *upcaseTable { return v.loadUpcaseRest(&u.low) })
	return u
}

// upcaseStream is $UpCase's data, nil when it is missing or short.
func (v *Volume) upcaseStream() *stream {
	in, err := v.loadInode(recUpCase)
	if err != nil {
		return nil
	}
	s := in.find(atData, "")
	if s == nil || s.dataSize < upcaseBytes {
		return nil
	}
	return s
}

// loadUpcaseRest reads the rest of the table after its first part, low
// as read at open. The table is read into a pooled buffer and matched against the
// tables already in use: volumes share one copy, and a volume whose table
// is one of them (nearly every volume: Windows writes a few) allocates
// nothing. A table that cannot be read now folds its high code units as
// Unicode does, the fallback of a table unreadable at open.
func (v *Volume) loadUpcaseRest(low *[upcaseLow]uint16) *upcaseTable {
	buf := upcaseBufs.Get().(*[upcaseBytes]byte)
	defer upcaseBufs.Put(buf)
	for i, c := range low {
		binary.LittleEndian.PutUint16(buf[2*i:], c)
	}
	s := v.upcaseStream()
	if s == nil {
		return unicodeTable()
	}
	if _, err := v.readStream(s, buf[2*upcaseLow:], 2*upcaseLow); err != nil {
		return unicodeTable()
	}
	return internUpcase(buf)
}

// upcaseBytes is the size of an $UpCase table on disk.
const upcaseBytes = 2 * 65536

var upcaseBufs = sync.Pool{New: func() any { return new([upcaseBytes]byte) }}

// unicodeTable is the fallback table, built once (65,536 calls to
// unicode.ToUpper cost about a millisecond: too much to pay per volume
// opened when listing a library). It is never written.
var unicodeTable = sync.OnceValue(func() *upcaseTable {
	u := new(upcaseTable)
	for i := range u {
		r := unicode.ToUpper(rune(i))
		if r > 0xffff {
			r = rune(i)
		}
		u[i] = uint16(r)
	}
	return u
})

// unicodeUpcase folds with unicodeTable.
var unicodeUpcase = sync.OnceValue(func() *upcase { return upcaseOf(unicodeTable()) })

// sharedUpcase is one $UpCase table in use, decoded, with its bytes as on
// disk to recognize it on another volume. Volumes hold &table, which keeps
// the whole of it alive.
type sharedUpcase struct {
	table upcaseTable
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

func internUpcase(raw *[upcaseBytes]byte) *upcaseTable {
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
		ca, cb := u.upper(a[i]), u.upper(b[i])
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
