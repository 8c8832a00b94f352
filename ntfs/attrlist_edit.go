package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"
)

// Writing $ATTRIBUTE_LIST: the list is rebuilt from what the base and
// extension records hold, one entry per attribute, sorted by type, name
// and first VCN, resident in the base record while it fits.

// listValue returns the $ATTRIBUTE_LIST value of base record r (nil when none).
func (v *Volume) listValue(r *record) ([]byte, *attr, error) {
	off := r.findAttr(atAttrList, "", false)
	if off < 0 {
		return nil, nil, nil
	}
	a, err := parseAttr(r.buf[off:r.used], v.clusters)
	if err != nil {
		return nil, nil, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", r.num, err)
	}
	val, err := v.attrValue(&a, 1<<20)
	if err != nil {
		return nil, nil, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", r.num, err)
	}
	return val, &a, nil
}

// listRecords returns the extension records a base record's list names.
func (o *op) listRecords(r *record) ([]uint64, error) {
	list, _, err := o.v.listValue(r)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for off := 0; off+0x1a <= len(list); {
		l := int(binary.LittleEndian.Uint16(list[off+4:]))
		if l < 0x1a || off+l > len(list) {
			return nil, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST entry at %d has bad length %d: %w", r.num, off, l, syscall.EIO)
		}
		ref := binary.LittleEndian.Uint64(list[off+0x10:]) & refNumMask
		off += l
		if ref != r.num && !slices.Contains(out, ref) {
			if len(out) >= 4096 {
				return nil, fmt.Errorf("ntfs: MFT record %d: too many extension records: %w", r.num, syscall.EIO)
			}
			rr, err := o.rec(ref)
			if err != nil {
				return nil, fmt.Errorf("ntfs: MFT record %d: extension record %d: %w", r.num, ref, err)
			}
			if rr.base != r.num {
				return nil, fmt.Errorf("ntfs: MFT record %d: extension record %d belongs to %d: %w", r.num, ref, rr.base, syscall.EIO)
			}
			out = append(out, ref)
		}
	}
	return out, nil
}

// listEntry is one $ATTRIBUTE_LIST entry.
type listEntry struct {
	typ      uint32
	name     []uint16
	startVCN int64
	ref      uint64
	id       uint16
}

// appendListEntries adds the list entries of rr's attributes (all but the
// list itself) from their headers alone: the list is rebuilt at every
// commit of a file that has one (syncLists), where decoding the runlists
// and values would be wasted.
func appendListEntries(ents []listEntry, rr *record) ([]listEntry, error) {
	for off, n := rr.attrOff, 0; ; n++ {
		if off+8 > rr.used || n > 4096 {
			return nil, fmt.Errorf("ntfs: MFT record %d: attributes run past the used size: %w", rr.num, syscall.EIO)
		}
		b := rr.buf[off:rr.used]
		typ := binary.LittleEndian.Uint32(b)
		if typ == attrEndMark {
			return ents, nil
		}
		l := int(binary.LittleEndian.Uint32(b[4:]))
		if l < 0x18 || l > len(b) || l%8 != 0 {
			return nil, fmt.Errorf("ntfs: MFT record %d, attribute at %d: bad length %d: %w", rr.num, off, l, syscall.EIO)
		}
		b = b[:l]
		nameLen, nameOff := int(b[9]), int(binary.LittleEndian.Uint16(b[10:]))
		if nameOff+2*nameLen > l || b[8] != 0 && l < 0x20 {
			return nil, fmt.Errorf("ntfs: MFT record %d, attribute at %d: bad header: %w", rr.num, off, syscall.EIO)
		}
		if typ != atAttrList {
			e := listEntry{typ: typ, ref: fileRef(rr), id: binary.LittleEndian.Uint16(b[14:]), name: make([]uint16, nameLen)}
			for i := range e.name {
				e.name[i] = binary.LittleEndian.Uint16(b[nameOff+2*i:])
			}
			if b[8] != 0 {
				e.startVCN = int64(binary.LittleEndian.Uint64(b[0x10:]))
			}
			ents = append(ents, e)
		}
		off += l
	}
}

// writeAttrList rebuilds base's list from what base and exts hold. It
// returns how many more bytes the base record would need when the list
// does not fit (the caller keeps that room and lays out again), unless
// spill or a long list makes it non-resident.
func (v *Volume) writeAttrList(o *op, base *record, exts []*record, spill bool) (int, error) {
	var ents []listEntry
	for _, rr := range append([]*record{base}, exts...) {
		var err error
		if ents, err = appendListEntries(ents, rr); err != nil {
			return 0, err
		}
	}
	o.mark(base)
	off := base.findAttr(atAttrList, "", false)
	if !slices.ContainsFunc(ents, func(e listEntry) bool { return e.ref&refNumMask != base.num }) {
		if off >= 0 { // every attribute is back in the base record
			return 0, v.dropAttrList(base, off)
		}
		return 0, nil
	}
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i], ents[j]
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if c := v.up.collate(a.name, b.name); c != 0 {
			return c < 0
		}
		return a.startVCN < b.startVCN
	})
	val := encodeList(ents)
	if cur, _, err := v.listValue(base); err == nil && off >= 0 && bytes.Equal(cur, val) {
		return 0, nil
	}
	if off >= 0 && base.buf[off+8] != 0 {
		return v.writeNonResidentList(base, off, val)
	}
	b := residentAttr(atAttrList, "", val)
	var err error
	if off >= 0 {
		err = base.replaceAttr(off, b)
	} else {
		_, err = base.insertAttr(b)
	}
	var full *recordFullError
	if errors.As(err, &full) {
		if spill || len(val) >= v.geo.recordSize/4 {
			// A long list leaves the base record, as ntfs-3g moves it out.
			return v.writeNonResidentList(base, off, val)
		}
		old := 0
		if off >= 0 {
			old = int(binary.LittleEndian.Uint32(base.buf[off+4:]))
		}
		return max(8, len(b)-old-base.free()), nil
	}
	return 0, err
}

// syncLists rebuilds the attribute list of every changed base record
// that has one, so that attributes other edits added to or removed from
// a base record (a hard link's $FILE_NAME, a stream) are listed.
func (o *op) syncLists() error {
	for n := range o.dirty {
		r := o.recs[n]
		if r == nil || r.base != 0 || r.flags&recInUse == 0 || r.findAttr(atAttrList, "", false) < 0 {
			continue
		}
		nums, err := o.listRecords(r)
		if err != nil {
			return err
		}
		exts := make([]*record, 0, len(nums))
		for _, e := range nums {
			rr, err := o.rec(e)
			if err != nil {
				return err
			}
			exts = append(exts, rr)
		}
		need, err := o.v.writeAttrList(o, r, exts, true)
		if err != nil {
			return err
		}
		if need > 0 {
			return &recordFullError{r.num}
		}
		if err := o.freeEmptyExtensions(exts); err != nil {
			return err
		}
	}
	return nil
}

// freeEmptyExtensions releases extension records left without attributes
// (a hard link removed from one): the rebuilt list no longer names them.
func (o *op) freeEmptyExtensions(exts []*record) error {
	for _, rr := range exts {
		if len(rr.attrOffsets()) > 0 || rr.flags&recInUse == 0 {
			continue
		}
		rr.flags &^= recInUse
		if rr.seq++; rr.seq == 0 {
			rr.seq = 1
		}
		o.add(rr)
		if err := o.freeRecord(rr.num); err != nil {
			return err
		}
	}
	return nil
}

func encodeList(ents []listEntry) []byte {
	var out []byte
	for _, e := range ents {
		l := align8(0x1a + 2*len(e.name))
		b := make([]byte, l)
		binary.LittleEndian.PutUint32(b, e.typ)
		binary.LittleEndian.PutUint16(b[4:], uint16(l))
		b[6] = byte(len(e.name))
		b[7] = 0x1a
		binary.LittleEndian.PutUint64(b[8:], uint64(e.startVCN))
		binary.LittleEndian.PutUint64(b[0x10:], e.ref)
		binary.LittleEndian.PutUint16(b[0x18:], e.id)
		copy(b[0x1a:], nameBytes(e.name))
		out = append(out, b...)
	}
	return out
}

// writeNonResidentList stores a list kept in clusters: the new value
// goes to new clusters, so that the old list stays valid until the base
// record is written.
func (v *Volume) writeNonResidentList(base *record, off int, val []byte) (int, error) {
	cs := v.geo.clusterSize
	var old attr // the list being replaced, if any
	if off >= 0 {
		var err error
		if old, err = parseAttr(base.buf[off:base.used], v.clusters); err != nil {
			return 0, fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", base.num, err)
		}
	}
	n := (int64(len(val)) + cs - 1) / cs
	runs, err := v.allocClusters(n, 0)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, n*cs)
	copy(buf, val)
	if err := v.writeRuns(runs, buf, 0); err != nil {
		return 0, err
	}
	s := &stream{runs: runs, dataSize: int64(len(val)), initSize: int64(len(val)), allocSize: n * cs}
	b := nonResidentAttr(atAttrList, "", 0, s, cs)
	var full *recordFullError
	if off >= 0 {
		err = base.replaceAttr(off, b)
	} else {
		_, err = base.insertAttr(b)
	}
	if errors.As(err, &full) {
		return max(8, len(b)-old.length-base.free()), v.freeRuns(runs)
	} else if err != nil {
		return 0, err
	}
	if old.resident {
		return 0, nil
	}
	return 0, v.freeRuns(old.runs)
}

// dropAttrList removes the list at off of base, freeing its clusters.
func (v *Volume) dropAttrList(base *record, off int) error {
	if base.buf[off+8] != 0 {
		a, err := parseAttr(base.buf[off:base.used], v.clusters)
		if err != nil {
			return fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", base.num, err)
		}
		if err := v.freeRuns(a.runs); err != nil {
			return err
		}
	}
	base.removeAttr(off)
	return nil
}

// dataSizesOf returns the sizes of unnamed $DATA of a file with a list,
// from its first extent wherever it is; ok is false when not found.
func (o *op) dataSizesOf(r *record) (size, alloc int64, ok bool, err error) {
	recs, err := o.listRecords(r)
	if err != nil {
		return 0, 0, false, err
	}
	for _, n := range append([]uint64{r.num}, recs...) {
		rr, err := o.rec(n)
		if err != nil {
			return 0, 0, false, err
		}
		attrs, err := parseAttrs(rr, o.v.clusters)
		if err != nil {
			return 0, 0, false, err
		}
		for _, a := range attrs {
			if a.typ != atData || a.name != "" || a.startVCN != 0 {
				continue
			}
			size, alloc = a.dataSize, a.allocSize
			if a.resident {
				alloc = int64(align8(int(size)))
			} else if a.compSize > 0 && a.flags&(afCompressed|afSparse) != 0 {
				alloc = a.compSize
			}
			return size, alloc, true, nil
		}
	}
	return 0, 0, false, nil
}

// nameRecords lists the records that may hold a file's $FILE_NAMEs: the
// base record, and for files with an attribute list its extension records.
func (o *op) nameRecords(r *record) ([]*record, error) {
	out := []*record{r}
	if r.flags&recIsDir != 0 || r.findAttr(atAttrList, "", false) < 0 {
		return out, nil
	}
	nums, err := o.listRecords(r)
	if err != nil {
		return nil, err
	}
	for _, n := range nums {
		rr, err := o.rec(n)
		if err != nil {
			return nil, err
		}
		if _, err := parseAttrs(rr, o.v.clusters); err != nil { // checked before values are edited
			return nil, err
		}
		out = append(out, rr)
	}
	return out, nil
}
