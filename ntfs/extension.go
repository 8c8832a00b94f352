package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Attributes that do not fit a file's base record go to its extension
// records, named by an $ATTRIBUTE_LIST in the base record (created here
// when the file has none), as Windows and ntfs-3g place a file's
// many hard links.

// placeAttr adds attribute bytes b to file r: to the base record when it
// has room, else to an extension record with room or a new one.
func (o *op) placeAttr(r *record, b []byte) error {
	v := o.v
	err := v.fit(r, func() error { _, err := r.insertAttr(b); return err })
	var full *recordFullError
	if !errors.As(err, &full) || r.base != 0 {
		return err
	}
	var exts []*record
	if r.findAttr(atAttrList, "", false) >= 0 {
		nums, err := o.listRecords(r)
		if err != nil {
			return err
		}
		for _, n := range nums {
			rr, err := o.rec(n)
			if err != nil {
				return err
			}
			exts = append(exts, rr)
		}
	}
	var home *record
	for _, rr := range exts {
		if rr.free() >= len(b) {
			home = rr
			break
		}
	}
	if home == nil {
		if home, err = o.newExtension(r); err != nil {
			return err
		}
		exts = append(exts, home)
	}
	if _, err := home.insertAttr(b); err != nil {
		return err
	}
	o.add(home)
	o.mark(r)
	return o.relist(r, exts, home)
}

// relist writes r's attribute list after a change of where its
// attributes are; when the base record cannot hold even the list, its
// last $FILE_NAMEs move to extension record home first.
func (o *op) relist(r *record, exts []*record, home *record) error {
	for try := 0; try < 8; try++ {
		need, err := o.v.writeAttrList(o, r, exts, true)
		if err != nil || need == 0 {
			return err
		}
		off := lastFileName(r)
		l := 0
		if off >= 0 {
			l = int(binary.LittleEndian.Uint32(r.buf[off+4:]))
		}
		if off < 0 || home.free() < l {
			return &recordFullError{r.num}
		}
		if _, err := home.insertAttr(append([]byte(nil), r.buf[off:off+l]...)); err != nil {
			return err
		}
		r.removeAttr(off)
	}
	return fmt.Errorf("ntfs: MFT record %d: no layout for its attribute list: %w", r.num, &recordFullError{r.num})
}

func lastFileName(r *record) int {
	last := -1
	for _, off := range r.attrOffsets() {
		if binary.LittleEndian.Uint32(r.buf[off:]) == atFileName {
			last = off
		}
	}
	return last
}

// newExtension allocates an extension record of base.
func (o *op) newExtension(base *record) (*record, error) {
	v := o.v
	n, err := v.allocRecord()
	if err != nil {
		return nil, err
	}
	r := emptyRecord(n, v.geo.recordSize)
	r.seq = v.nextSeq(n)
	r.flags = recInUse
	r.base = base.num
	binary.LittleEndian.PutUint64(r.buf[0x20:], fileRef(base))
	r.syncHeader()
	o.add(r)
	return r, nil
}
