package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// Kinds of new files.
const (
	kindFile = iota
	kindDir
)

// checkAbsent refuses a name that exists in dir in any case (EEXIST).
func (v *Volume) checkAbsent(dir uint64, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	di, err := v.dirOf(dir)
	if err != nil {
		return err
	}
	_, err = v.lookupEntry(di, encodeName(name))
	switch {
	case err == nil:
		return fmt.Errorf("ntfs: %q already exists in directory %d (names are case-insensitive): %w", name, dir, syscall.EEXIST)
	case errors.Is(err, syscall.ENOENT):
		return nil
	}
	return err
}

// createRecord makes a new file record named name in dir (not yet indexed).
func (o *op) createRecord(dir uint64, name string, kind int) (*record, *dirW, error) {
	v := o.v
	dw, err := o.dir(dir)
	if err != nil {
		return nil, nil, err
	}
	secID, err := o.inheritedSecurity(dw, kind == kindDir)
	if err != nil {
		return nil, nil, err
	}
	num, err := v.allocRecord()
	if err != nil {
		return nil, nil, err
	}
	r := emptyRecord(num, v.geo.recordSize)
	r.seq = v.nextSeq(num)
	r.flags, r.links = recInUse, 1
	attrs := uint32(faArchive)
	if kind == kindDir {
		r.flags |= recIsDir // archive stays set, as ntfs-3g does
	}
	si := newSI(attrs, secID)
	if _, err := r.insertAttr(residentAttr(atStandardInfo, "", si)); err != nil {
		return nil, nil, err
	}
	fn := newFileName(fileRef(dw.r), name, fileNameFlags(r, si), nsPOSIX)
	if _, err := r.insertAttr(residentAttr(atFileName, "", fn)); err != nil {
		return nil, nil, err
	}
	if kind == kindDir {
		_, err = r.insertAttr(residentAttr(atIndexRoot, "$I30", v.emptyIndexRoot()))
	} else {
		_, err = r.insertAttr(residentAttr(atData, "", nil))
	}
	if err != nil {
		return nil, nil, err
	}
	o.add(r)
	return r, dw, nil
}

// nextSeq is the sequence number a reused record gets: one more than the
// last one, so stale references to the old file do not match.
func (v *Volume) nextSeq(n uint64) uint16 {
	buf := make([]byte, v.geo.recordSize)
	if err := v.readRuns(v.mftRuns, buf, int64(n)*int64(v.geo.recordSize)); err != nil || string(buf[:4]) != "FILE" {
		return 1
	}
	s := binary.LittleEndian.Uint16(buf[0x10:])
	if s == 0 {
		return 1
	}
	return s
}

// emptyIndexRoot is the $INDEX_ROOT of an empty directory.
func (v *Volume) emptyIndexRoot() []byte {
	b := make([]byte, 0x30)
	binary.LittleEndian.PutUint32(b, atFileName)
	binary.LittleEndian.PutUint32(b[4:], 1) // COLLATION_FILE_NAME
	bs := v.geo.indexBlockSize
	binary.LittleEndian.PutUint32(b[8:], uint32(bs))
	if int64(bs) >= v.geo.clusterSize {
		b[12] = byte(int64(bs) / v.geo.clusterSize)
	} else {
		b[12] = byte(bs / 512)
	}
	binary.LittleEndian.PutUint32(b[0x10:], 0x10)
	binary.LittleEndian.PutUint32(b[0x14:], 0x20)
	binary.LittleEndian.PutUint32(b[0x18:], 0x20)
	binary.LittleEndian.PutUint16(b[0x28:], 0x10)
	binary.LittleEndian.PutUint16(b[0x2c:], ieLast)
	return b
}

// link adds r's $FILE_NAME for name into dw (the index and the record).
func (o *op) link(r *record, dw *dirW, name string) error {
	si, err := siValue(r)
	if err != nil {
		return err
	}
	fn := newFileName(fileRef(dw.r), name, fileNameFlags(r, si), nsPOSIX)
	if err := o.placeAttr(r, residentAttr(atFileName, "", fn)); err != nil {
		return err
	}
	o.mark(r)
	if err := dw.insert(fileRef(r), fn); err != nil {
		return err
	}
	if err := touch(dw.r); err != nil {
		return err
	}
	return o.refreshFileNames(r)
}
