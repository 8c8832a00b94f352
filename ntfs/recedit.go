package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Editing a record in memory: attributes are kept sorted by type and name,
// the header's used size and next attribute id kept in step.

// recordFullError says an MFT record has no room left; it unwraps to
// ENOSPC for callers that cannot make room.
type recordFullError struct{ num uint64 }

func (e *recordFullError) Error() string {
	return fmt.Sprintf("ntfs: MFT record %d is full", e.num)
}

func (e *recordFullError) Unwrap() error { return syscall.ENOSPC }

func (r *record) allocated() int { return int(binary.LittleEndian.Uint32(r.buf[0x1c:])) }

// syncHeader stores the header fields that edits change.
func (r *record) syncHeader() {
	binary.LittleEndian.PutUint16(r.buf[0x10:], r.seq)
	binary.LittleEndian.PutUint16(r.buf[0x12:], r.links)
	binary.LittleEndian.PutUint16(r.buf[0x16:], r.flags)
	binary.LittleEndian.PutUint32(r.buf[0x18:], uint32(r.used))
	binary.LittleEndian.PutUint16(r.buf[0x28:], r.nextID)
}

// free is how many bytes the record can still grow by.
func (r *record) free() int { return r.allocated() - r.used }

// resizeAttr changes the length of the attribute at off to n bytes,
// moving the attributes after it.
func (r *record) resizeAttr(off, n int) error {
	old := int(binary.LittleEndian.Uint32(r.buf[off+4:]))
	if r.used+n-old > r.allocated() {
		return &recordFullError{r.num}
	}
	copy(r.buf[off+n:], r.buf[off+old:r.used])
	if n < old {
		clear(r.buf[r.used+n-old : r.used])
	}
	r.used += n - old
	binary.LittleEndian.PutUint32(r.buf[off+4:], uint32(n))
	r.syncHeader()
	return nil
}

// replaceAttr puts attribute bytes b in place of the attribute at off.
func (r *record) replaceAttr(off int, b []byte) error {
	id := binary.LittleEndian.Uint16(r.buf[off+14:])
	if err := r.resizeAttr(off, len(b)); err != nil {
		return err
	}
	copy(r.buf[off:], b)
	binary.LittleEndian.PutUint16(r.buf[off+14:], id)
	return nil
}

// insertAttr adds attribute bytes b at its sorted place and gives it an id.
func (r *record) insertAttr(b []byte) (int, error) {
	if r.used+len(b) > r.allocated() {
		return 0, &recordFullError{r.num}
	}
	typ := binary.LittleEndian.Uint32(b)
	name := attrNameOf(b)
	off := r.attrOff
	for off+8 <= r.used {
		t := binary.LittleEndian.Uint32(r.buf[off:])
		if t == attrEndMark || t > typ || (t == typ && collateAttrName(attrNameOf(r.buf[off:]), name) > 0) {
			break
		}
		off += int(binary.LittleEndian.Uint32(r.buf[off+4:]))
	}
	copy(r.buf[off+len(b):], r.buf[off:r.used])
	copy(r.buf[off:], b)
	binary.LittleEndian.PutUint16(r.buf[off+14:], r.nextID)
	r.nextID++
	r.used += len(b)
	r.syncHeader()
	return off, nil
}

// collateAttrName orders two attribute names of one type as ntfs-3g's
// ntfs_attr_find and Windows expect them in a record: upper-cased code
// units first, then exact code units ("offvm.scan" before
// "Zone.Identifier", not after as bytes would put it: a reader stops
// at the first name that collates after the one it looks for). The
// Unicode table stands in for the volume's $UpCase, which a record does
// not reach: attribute names Windows makes are ASCII, where every table
// agrees.
func collateAttrName(a, b string) int {
	if a == b {
		return 0
	}
	return unicodeUpcase().collateExact(encodeName(a), encodeName(b))
}

// removeAttr deletes the attribute at off.
func (r *record) removeAttr(off int) {
	l := int(binary.LittleEndian.Uint32(r.buf[off+4:]))
	copy(r.buf[off:], r.buf[off+l:r.used])
	clear(r.buf[r.used-l : r.used])
	r.used -= l
	r.syncHeader()
}

// findAttr returns the offset of the first attribute of that type and
// name (or any name when anyName), -1 when absent.
func (r *record) findAttr(typ uint32, name string, anyName bool) int {
	for off := r.attrOff; off+8 <= r.used; {
		t := binary.LittleEndian.Uint32(r.buf[off:])
		if t == attrEndMark {
			break
		}
		if t == typ && (anyName || attrNameOf(r.buf[off:]) == name) {
			return off
		}
		off += int(binary.LittleEndian.Uint32(r.buf[off+4:]))
	}
	return -1
}

// attrs lists the offsets of every attribute.
func (r *record) attrOffsets() []int {
	var out []int
	for off := r.attrOff; off+8 <= r.used; {
		if binary.LittleEndian.Uint32(r.buf[off:]) == attrEndMark {
			break
		}
		out = append(out, off)
		off += int(binary.LittleEndian.Uint32(r.buf[off+4:]))
	}
	return out
}

func attrNameOf(b []byte) string {
	n, off := int(b[9]), int(binary.LittleEndian.Uint16(b[10:]))
	if n == 0 || off+2*n > len(b) {
		return ""
	}
	return decodeName(b[off : off+2*n])
}

// residentValue returns the value bytes of the resident attribute at off.
func (r *record) residentValue(off int) []byte {
	vl := int(binary.LittleEndian.Uint32(r.buf[off+0x10:]))
	vo := int(binary.LittleEndian.Uint16(r.buf[off+0x14:]))
	return r.buf[off+vo : off+vo+vl]
}

func align8(n int) int { return (n + 7) &^ 7 }

// residentAttr builds a resident attribute.
func residentAttr(typ uint32, name string, value []byte) []byte {
	nu := encodeName(name)
	vo := align8(0x18 + 2*len(nu))
	b := make([]byte, align8(vo+len(value)))
	binary.LittleEndian.PutUint32(b, typ)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	b[9] = byte(len(nu))
	binary.LittleEndian.PutUint16(b[10:], 0x18)
	copy(b[0x18:], nameBytes(nu))
	binary.LittleEndian.PutUint32(b[0x10:], uint32(len(value)))
	binary.LittleEndian.PutUint16(b[0x14:], uint16(vo))
	if typ == atFileName {
		b[0x16] = 1 // indexed
	}
	copy(b[vo:], value)
	return b
}

// nonResidentAttr builds a non-resident attribute holding the whole stream.
func nonResidentAttr(typ uint32, name string, flags uint16, s *stream, clusterSize int64) []byte {
	nu := encodeName(name)
	hdr := 0x40
	if flags&(afCompressed|afSparse) != 0 {
		hdr = 0x48
	}
	ro := align8(hdr + 2*len(nu))
	rl := encodeRuns(s.runs)
	b := make([]byte, align8(ro+len(rl)))
	binary.LittleEndian.PutUint32(b, typ)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	b[8] = 1
	b[9] = byte(len(nu))
	binary.LittleEndian.PutUint16(b[10:], uint16(hdr))
	binary.LittleEndian.PutUint16(b[12:], flags)
	copy(b[hdr:], nameBytes(nu))
	var last int64 = -1
	if n := len(s.runs); n > 0 {
		last = s.runs[n-1].vcn + s.runs[n-1].length - 1
	}
	binary.LittleEndian.PutUint64(b[0x18:], uint64(last))
	binary.LittleEndian.PutUint16(b[0x20:], uint16(ro))
	if s.compUnit > 0 {
		cu := 0
		for 1<<cu < s.compUnit {
			cu++
		}
		binary.LittleEndian.PutUint16(b[0x22:], uint16(cu))
	}
	binary.LittleEndian.PutUint64(b[0x28:], uint64(s.allocSize))
	binary.LittleEndian.PutUint64(b[0x30:], uint64(s.dataSize))
	binary.LittleEndian.PutUint64(b[0x38:], uint64(s.initSize))
	if hdr == 0x48 {
		binary.LittleEndian.PutUint64(b[0x40:], uint64(allocatedClusters(s.runs)*clusterSize))
	}
	copy(b[ro:], rl)
	return b
}
