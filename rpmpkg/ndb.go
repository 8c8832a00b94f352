package rpmpkg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
)

// SUSE's rpm (SLES 15, openSUSE Leap 15 and Tumbleweed before its move to
// SQLite) keeps the headers in /var/lib/rpm/Packages.db, rpm's own "ndb"
// format: a 32-byte file header, then slot pages (4096 bytes of 16-byte
// slots: "Slot", package index, first block, block count), then blobs in
// 16-byte blocks, each "BlbS", package index, time stamp, length, the
// header, zero padding, and a tail (Adler-32 of everything before it,
// length, "BlbE"). Every number is little-endian. A slot whose first
// block is 0 is free.

// ErrNDB marks a file that is not an rpm ndb package database offvm can read.
var ErrNDB = errors.New("invalid rpm ndb database")

const (
	ndbHeaderSize = 32
	ndbSlotSize   = 16
	ndbBlockSize  = 16
	ndbPageSize   = 4096
	ndbBlobHead   = 16
	ndbBlobTail   = 12
	ndbMaxPages   = 1 << 16
)

var (
	ndbMagic     = [4]byte{'R', 'p', 'm', 'P'}
	ndbSlotMagic = [4]byte{'S', 'l', 'o', 't'}
	ndbHeadMagic = [4]byte{'B', 'l', 'b', 'S'}
	ndbTailMagic = [4]byte{'B', 'l', 'b', 'E'}
)

// ReadNDB returns the records of an rpm ndb Packages.db, in slot order.
// Each blob's Adler-32 is checked: a torn write (rpm was killed while
// writing a package) is reported, not read as a header.
func ReadNDB(data []byte) ([]Record, error) {
	if len(data) < ndbHeaderSize || [4]byte(data[:4]) != ndbMagic {
		return nil, fmt.Errorf("no RpmP magic: %w", ErrNDB)
	}
	le := binary.LittleEndian
	if v := le.Uint32(data[4:]); v != 0 {
		return nil, fmt.Errorf("version %d (offvm reads 0): %w", v, ErrNDB)
	}
	pages := le.Uint32(data[12:])
	if pages == 0 || pages > ndbMaxPages || int64(pages)*ndbPageSize > int64(len(data)) {
		return nil, fmt.Errorf("%d slot pages in %d bytes: %w", pages, len(data), ErrNDB)
	}
	if len(data)%ndbBlockSize != 0 {
		return nil, fmt.Errorf("%d bytes, not whole blocks (truncated): %w", len(data), ErrNDB)
	}
	firstBlob := pages * (ndbPageSize / ndbBlockSize)
	var out []Record
	for off := ndbHeaderSize; off < int(pages)*ndbPageSize; off += ndbSlotSize {
		s := data[off : off+ndbSlotSize]
		if [4]byte(s[:4]) != ndbSlotMagic {
			return nil, fmt.Errorf("slot %d: no Slot magic: %w", off/ndbSlotSize, ErrNDB)
		}
		idx, blk, cnt := le.Uint32(s[4:]), le.Uint32(s[8:]), le.Uint32(s[12:])
		if blk == 0 {
			continue // free
		}
		if idx == 0 || cnt == 0 || blk < firstBlob || uint64(blk)+uint64(cnt) > uint64(len(data)/ndbBlockSize) {
			return nil, fmt.Errorf("slot %d: package %d at blocks %d+%d: %w", off/ndbSlotSize, idx, blk, cnt, ErrNDB)
		}
		blob, err := ndbBlob(data[int(blk)*ndbBlockSize:int(blk+cnt)*ndbBlockSize], idx)
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Index: idx, Blob: blob})
	}
	return out, nil
}

// ndbBlob checks one blob's head, length, tail and checksum and returns
// the header it holds.
func ndbBlob(b []byte, idx uint32) ([]byte, error) {
	le := binary.LittleEndian
	if len(b) < ndbBlobHead+ndbBlobTail || [4]byte(b[:4]) != ndbHeadMagic || le.Uint32(b[4:]) != idx {
		return nil, fmt.Errorf("package %d: no blob head for it: %w", idx, ErrNDB)
	}
	n := le.Uint32(b[12:])
	if uint64(ndbBlobHead)+uint64(n)+ndbBlobTail > uint64(len(b)) || (ndbBlobHead+int(n)+ndbBlobTail+ndbBlockSize-1)/ndbBlockSize != len(b)/ndbBlockSize {
		return nil, fmt.Errorf("package %d: a %d-byte header in %d bytes of blocks: %w", idx, n, len(b), ErrNDB)
	}
	tail := b[len(b)-ndbBlobTail:]
	if [4]byte(tail[8:]) != ndbTailMagic || le.Uint32(tail[4:]) != n {
		return nil, fmt.Errorf("package %d: blob tail does not match its head: %w", idx, ErrNDB)
	}
	if sum := adler32.Checksum(b[:len(b)-ndbBlobTail]); sum != le.Uint32(tail) {
		return nil, fmt.Errorf("package %d: Adler-32 %#x, tail says %#x (torn write?): %w", idx, sum, le.Uint32(tail), ErrNDB)
	}
	return b[ndbBlobHead : ndbBlobHead+n], nil
}
