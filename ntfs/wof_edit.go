package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// A WOF-compressed file (CompactOS) is made plain on its first change,
// as Windows' WOF driver does when a compressed file is opened for
// writing: the content is decompressed into the unnamed $DATA (new
// clusters; the compressed stream is read while it is still intact),
// then the WofCompressedData stream, the WOF reparse point and its
// $Extend\$Reparse entry go, and the change is made to the plain file.

// wofUnwrap makes file r plain if it is WOF-compressed; files whose
// data is elsewhere (EFS, dedup, WIMBoot) are refused with the reason.
func (o *op) wofUnwrap(r *record) error {
	v := o.v
	in, err := v.loadInode(r.num)
	if err != nil {
		return err
	}
	if err := v.readable(in); err != nil {
		return err // EFS, dedup, WIMBoot: the data is not here to change
	}
	w, err := v.wofOpen(in)
	if err != nil || w == nil {
		return err
	}
	d, err := o.openStream(r, "")
	if err != nil {
		return err
	}
	if err := v.truncateData(d, 0); err != nil { // the sparse placeholder
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < w.size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), w.size-off)]
		if n, err := v.wofReadAt(w, p, off); n < len(p) {
			return fmt.Errorf("ntfs: MFT record %d: decompressing for a write: %w", r.num, err)
		}
		if err := v.writeData(d, p, off); err != nil {
			return err
		}
	}
	ws, err := o.openStream(r, wofStreamName)
	if err != nil {
		return err
	}
	if err := v.truncateData(ws, 0); err != nil {
		return err
	}
	if err := o.removeAttrAnywhere(r, atData, wofStreamName); err != nil {
		return err
	}
	if err := o.removeAttrAnywhere(r, atReparse, ""); err != nil {
		return err
	}
	if err := o.removeReparseEntry(tagWOF, fileRef(r)); err != nil {
		return err
	}
	si, err := siValue(r)
	if err != nil {
		return err
	}
	a := binary.LittleEndian.Uint32(si[0x20:])
	binary.LittleEndian.PutUint32(si[0x20:], a&^(faReparse|faSparse))
	o.mark(r)
	return nil
}

// removeAttrAnywhere removes the resident attribute typ:name from the
// base record or the extension record holding it (the attribute list is
// rebuilt at commit). A non-resident one must have been emptied first.
func (o *op) removeAttrAnywhere(r *record, typ uint32, name string) error {
	recs := []*record{r}
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
			recs = append(recs, rr)
		}
	}
	for _, rr := range recs {
		off := rr.findAttr(typ, name, false)
		if off < 0 {
			continue
		}
		if rr.buf[off+8] != 0 {
			a, err := parseAttr(rr.buf[off:rr.used], o.v.clusters)
			if err != nil {
				return fmt.Errorf("ntfs: MFT record %d: %w", rr.num, err)
			}
			if err := o.v.freeRuns(a.runs); err != nil {
				return err
			}
		}
		rr.removeAttr(off)
		o.add(rr)
		return nil
	}
	return fmt.Errorf("ntfs: MFT record %d has no attribute %#x %q: %w", r.num, typ, name, syscall.ENOENT)
}
