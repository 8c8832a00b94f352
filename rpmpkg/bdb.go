package rpmpkg

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// rpm before 4.16 (RHEL/CentOS 7 and 8, Fedora up to 32, SLES 12 and
// older) keeps each installed package's header in /var/lib/rpm/Packages,
// a Berkeley DB hash database: key the 4-byte header number (in the
// writer's byte order), value the header blob. The reader walks the hash
// buckets as Berkeley DB lays them out on disk, following the chains of
// bucket pages and the overflow pages that hold values too large for a
// bucket page. It reads; it never writes, and needs no Berkeley DB
// library.

// ErrBDB marks a file that is not a Berkeley DB hash database offvm can read.
var ErrBDB = errors.New("invalid Berkeley DB hash database")

// Record is one package of a database: its header number and header blob.
type Record struct {
	Index uint32
	Blob  []byte
}

// Berkeley DB on-disk constants (db_page.h, hash.h).
const (
	bdbHashMagic = 0x061561

	bdbPageHeader = 26 // lsn, pgno, prev, next, entries, hf_offset, level, type

	pageHashUnsorted = 2  // hash page of a version 8 database
	pageOverflow     = 7  // a piece of an item too big for its page
	pageHashMeta     = 8  // page 0
	pageHash         = 13 // hash page since Berkeley DB 4.6

	itemKeyData = 1 // the item's bytes follow its type byte
	itemDup     = 2 // duplicates on the page (rpm's Packages has none)
	itemOffPage = 3 // the item lives on a chain of overflow pages
	itemOffDup  = 4 // duplicates off the page

	maxBuckets = 1 << 24
)

type bdb struct {
	data     []byte
	order    binary.ByteOrder
	pageSize int
	lastPage uint32
	maxBkt   uint32
	spares   [32]uint32
}

// ReadBDB returns the records of an rpm Packages Berkeley DB hash file,
// in bucket order, without the record of header number 0 (rpm keeps the
// next free header number there, not a package).
func ReadBDB(data []byte) ([]Record, error) {
	db, err := openBDB(data)
	if err != nil {
		return nil, err
	}
	var out []Record
	for b := uint32(0); b <= db.maxBkt; b++ {
		recs, err := db.bucket(b)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// openBDB checks the metadata page: the hash magic in either byte order
// (a database keeps the byte order of the machine that made it), a hash
// version rpm wrote (8 to 10), a page size Berkeley DB allows, no
// encryption.
func openBDB(data []byte) (*bdb, error) {
	if len(data) < 512 {
		return nil, fmt.Errorf("%d bytes, shorter than a metadata page: %w", len(data), ErrBDB)
	}
	db := &bdb{data: data}
	switch {
	case binary.LittleEndian.Uint32(data[12:]) == bdbHashMagic:
		db.order = binary.LittleEndian
	case binary.BigEndian.Uint32(data[12:]) == bdbHashMagic:
		db.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("magic %#x is not a hash database's: %w", binary.LittleEndian.Uint32(data[12:]), ErrBDB)
	}
	u32 := func(off int) uint32 { return db.order.Uint32(data[off:]) }
	if v := u32(16); v < 8 || v > 10 {
		return nil, fmt.Errorf("hash version %d (offvm reads 8 to 10): %w", v, ErrBDB)
	}
	ps := u32(20)
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("page size %d: %w", ps, ErrBDB)
	}
	if data[24] != 0 {
		return nil, fmt.Errorf("encrypted (algorithm %d): %w", data[24], ErrBDB)
	}
	if data[25] != pageHashMeta {
		return nil, fmt.Errorf("page 0 has type %d, not hash metadata: %w", data[25], ErrBDB)
	}
	db.pageSize = int(ps)
	db.lastPage = u32(32)
	db.maxBkt = u32(72)
	if db.maxBkt >= maxBuckets {
		return nil, fmt.Errorf("%d buckets: %w", db.maxBkt, ErrBDB)
	}
	for i := range db.spares {
		db.spares[i] = u32(96 + 4*i)
	}
	return db, nil
}

// page returns page n, or nil for a page past the file's end or never
// written (zeros: a bucket Berkeley DB allocated but never filled).
func (db *bdb) page(n uint32) ([]byte, error) {
	if n == 0 || n > db.lastPage {
		return nil, fmt.Errorf("page %d outside 1..%d: %w", n, db.lastPage, ErrBDB)
	}
	off := int64(n) * int64(db.pageSize)
	if off+int64(db.pageSize) > int64(len(db.data)) {
		return nil, fmt.Errorf("page %d past the file's %d bytes (truncated): %w", n, len(db.data), ErrBDB)
	}
	p := db.data[off : off+int64(db.pageSize)]
	if pg := db.order.Uint32(p[8:]); pg != n {
		if pg == 0 && p[25] == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("page %d says it is page %d: %w", n, pg, ErrBDB)
	}
	return p, nil
}

// bucketPage is where bucket b starts: buckets are allocated in doublings,
// and spares[i] is the page offset of the doubling that holds buckets
// 2^(i-1) .. 2^i-1.
func (db *bdb) bucketPage(b uint32) uint32 {
	i := 0
	for x := b; x != 0; x >>= 1 {
		i++
	}
	return b + db.spares[i]
}

// bucket reads the key/value pairs of one bucket's chain of pages.
func (db *bdb) bucket(b uint32) ([]Record, error) {
	var out []Record
	seen := map[uint32]bool{}
	for n := db.bucketPage(b); n != 0; {
		if seen[n] {
			return nil, fmt.Errorf("bucket %d: page %d chained twice: %w", b, n, ErrBDB)
		}
		seen[n] = true
		p, err := db.page(n)
		if err != nil || p == nil {
			return out, err
		}
		if t := p[25]; t != pageHash && t != pageHashUnsorted {
			return nil, fmt.Errorf("bucket %d: page %d has type %d, not a hash page: %w", b, n, t, ErrBDB)
		}
		recs, err := db.pairs(p, n)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		n = db.order.Uint32(p[16:])
	}
	return out, nil
}

// pairs reads a hash page's items: an index of 2-byte offsets after the
// page header, items packed from the page's end downwards, key then value.
func (db *bdb) pairs(p []byte, n uint32) ([]Record, error) {
	entries := int(db.order.Uint16(p[20:]))
	if bdbPageHeader+2*entries > len(p) || entries%2 != 0 {
		return nil, fmt.Errorf("page %d: %d entries: %w", n, entries, ErrBDB)
	}
	item := func(i int) ([]byte, error) {
		off := int(db.order.Uint16(p[bdbPageHeader+2*i:]))
		end := len(p)
		if i > 0 {
			end = int(db.order.Uint16(p[bdbPageHeader+2*(i-1):]))
		}
		if off < bdbPageHeader+2*entries || off >= end || end > len(p) {
			return nil, fmt.Errorf("page %d: item %d at %d..%d: %w", n, i, off, end, ErrBDB)
		}
		return db.item(p[off:end], n, i)
	}
	var out []Record
	for i := 0; i < entries; i += 2 {
		k, err := item(i)
		if err != nil {
			return nil, err
		}
		v, err := item(i + 1)
		if err != nil {
			return nil, err
		}
		if len(k) != 4 {
			return nil, fmt.Errorf("page %d: a %d-byte key, want a 4-byte header number: %w", n, len(k), ErrBDB)
		}
		if idx := db.order.Uint32(k); idx != 0 {
			out = append(out, Record{Index: idx, Blob: v})
		}
	}
	return out, nil
}

// item decodes one item: inline bytes, or a reference to overflow pages.
func (db *bdb) item(it []byte, n uint32, i int) ([]byte, error) {
	switch it[0] {
	case itemKeyData:
		return it[1:], nil
	case itemOffPage:
		if len(it) < 12 {
			return nil, fmt.Errorf("page %d: item %d: short overflow reference: %w", n, i, ErrBDB)
		}
		return db.overflow(db.order.Uint32(it[4:]), db.order.Uint32(it[8:]))
	case itemDup, itemOffDup:
		return nil, fmt.Errorf("page %d: item %d holds duplicates, which rpm's Packages never has: %w", n, i, ErrBDB)
	}
	return nil, fmt.Errorf("page %d: item %d has type %d: %w", n, i, it[0], ErrBDB)
}

// overflow gathers an item of total bytes from its chain of overflow
// pages; each page says how many of its bytes are the item's.
func (db *bdb) overflow(first, total uint32) ([]byte, error) {
	if total == 0 || total > maxData || int64(total) > int64(len(db.data)) {
		return nil, fmt.Errorf("overflow item of %d bytes: %w", total, ErrBDB)
	}
	out := make([]byte, 0, min(int(total), len(db.data)))
	for n := first; uint32(len(out)) < total; {
		if n == 0 {
			return nil, fmt.Errorf("overflow chain from page %d ends after %d of %d bytes: %w", first, len(out), total, ErrBDB)
		}
		p, err := db.page(n)
		if err != nil {
			return nil, err
		}
		if p == nil || p[25] != pageOverflow {
			return nil, fmt.Errorf("page %d in an overflow chain is not an overflow page: %w", n, ErrBDB)
		}
		l := int(db.order.Uint16(p[22:]))
		if bdbPageHeader+l > len(p) || uint32(len(out)+l) > total || l == 0 {
			return nil, fmt.Errorf("overflow page %d holds %d bytes: %w", n, l, ErrBDB)
		}
		out = append(out, p[bdbPageHeader:bdbPageHeader+l]...)
		n = db.order.Uint32(p[16:])
	}
	return out, nil
}
