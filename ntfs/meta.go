package ntfs

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"syscall"
	"time"
)

// siValue is the record's $STANDARD_INFORMATION value (in the buffer).
func siValue(r *record) ([]byte, error) {
	off := r.findAttr(atStandardInfo, "", false)
	if off < 0 || r.buf[off+8] != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d has no $STANDARD_INFORMATION: %w", r.num, syscall.EIO)
	}
	v := r.residentValue(off)
	if len(v) < 0x30 {
		return nil, fmt.Errorf("ntfs: MFT record %d: short $STANDARD_INFORMATION: %w", r.num, syscall.EIO)
	}
	return v, nil
}

// touch sets the modification and change times to now.
func touch(r *record) error {
	si, err := siValue(r)
	if err != nil {
		return err
	}
	now := toNTFSTime(time.Now())
	binary.LittleEndian.PutUint64(si[0x08:], now)
	binary.LittleEndian.PutUint64(si[0x10:], now)
	return nil
}

func (v *Volume) clearCompressedFlag(r *record) {
	if si, err := siValue(r); err == nil {
		a := binary.LittleEndian.Uint32(si[0x20:])
		binary.LittleEndian.PutUint32(si[0x20:], a&^faCompressed)
	}
}

// newSI builds a version-3 $STANDARD_INFORMATION.
func newSI(attrs, secID uint32) []byte {
	b := make([]byte, 0x48)
	now := toNTFSTime(time.Now())
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(b[8*i:], now)
	}
	binary.LittleEndian.PutUint32(b[0x20:], attrs)
	binary.LittleEndian.PutUint32(b[0x34:], secID)
	return b
}

// newFileName builds a $FILE_NAME value for name in parent.
func newFileName(parent uint64, name string, flags uint32, ns byte) []byte {
	u := encodeName(name)
	b := make([]byte, 0x42+2*len(u))
	binary.LittleEndian.PutUint64(b, parent)
	now := toNTFSTime(time.Now())
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(b[8+8*i:], now)
	}
	binary.LittleEndian.PutUint32(b[0x38:], flags)
	b[0x40] = byte(len(u))
	b[0x41] = ns
	copy(b[0x42:], nameBytes(u))
	return b
}

// fileNameFlags is what a $FILE_NAME copy says of the file's attributes.
func fileNameFlags(r *record, si []byte) uint32 {
	f := binary.LittleEndian.Uint32(si[0x20:])
	if r.flags&recIsDir != 0 {
		f |= faDupIndexRoot
	}
	return f
}

// refreshFileNames copies times, sizes and flags into every $FILE_NAME of
// r and into the parents' index entries, keeping the copies in step.
func (o *op) refreshFileNames(r *record) error {
	si, err := siValue(r)
	if err != nil {
		return err
	}
	var alloc, size int64
	keepSizes := false
	if r.flags&recIsDir == 0 && r.findAttr(atAttrList, "", false) >= 0 {
		var found bool
		if size, alloc, found, err = o.dataSizesOf(r); err != nil {
			return err
		}
		keepSizes = !found
	} else if off := r.findAttr(atData, "", false); off < 0 && r.findAttr(atAttrList, "", false) >= 0 {
		keepSizes = true // the data lives in an extension record and did not change size
	} else if off >= 0 && r.flags&recIsDir == 0 {
		a, err := parseAttr(r.buf[off:r.used], o.v.clusters)
		if err != nil {
			return err
		}
		size, alloc = a.dataSize, a.allocSize
		if a.resident {
			alloc = int64(align8(int(size)))
		} else if a.compSize > 0 && a.flags&(afCompressed|afSparse) != 0 {
			alloc = a.compSize
		}
	}
	var reparse uint32
	if off := r.findAttr(atReparse, "", false); off >= 0 && r.buf[off+8] == 0 {
		if rv := r.residentValue(off); len(rv) >= 4 {
			reparse = binary.LittleEndian.Uint32(rv)
		}
	}
	recs, err := o.nameRecords(r)
	if err != nil {
		return err
	}
	for _, rr := range recs {
		if err := o.refreshNamesIn(r, rr, si, size, alloc, keepSizes, reparse); err != nil {
			return err
		}
	}
	return nil
}

// refreshNamesIn updates the $FILE_NAMEs that record rr of file r holds.
func (o *op) refreshNamesIn(r, rr *record, si []byte, size, alloc int64, keepSizes bool, reparse uint32) error {
	for _, off := range rr.attrOffsets() {
		if binary.LittleEndian.Uint32(rr.buf[off:]) != atFileName || rr.buf[off+8] != 0 {
			continue
		}
		if rr != r {
			o.mark(rr)
		}
		fn := rr.residentValue(off)
		copy(fn[0x08:0x28], si[0:0x20])
		if !keepSizes {
			binary.LittleEndian.PutUint64(fn[0x28:], uint64(alloc))
			binary.LittleEndian.PutUint64(fn[0x30:], uint64(size))
		}
		binary.LittleEndian.PutUint32(fn[0x38:], fileNameFlags(r, si))
		binary.LittleEndian.PutUint32(fn[0x3c:], reparse)
		parent := binary.LittleEndian.Uint64(fn) & refNumMask
		if err := o.refreshIndexCopy(r, parent, fn); err != nil {
			return err
		}
	}
	return nil
}

// refreshIndexCopy updates the copy of $FILE_NAME fn in the parent's
// index. Windows tolerates stale copies (chkdsk only refreshes them), so
// a parent whose index cannot be edited or lacks the entry does not stop
// the change of the file; only a failed write of the device does.
func (o *op) refreshIndexCopy(r *record, parent uint64, fn []byte) error {
	wasDirty := o.dirty[parent]
	dw, err := o.dir(parent)
	if err == nil {
		// Opening the index marks the parent's record to be written;
		// a copy in a block changes only the block (and a copy in the
		// root marks the record again, in writeNode).
		if !wasDirty {
			delete(o.dirty, parent)
		}
		err = dw.update(fileRef(r), append([]byte(nil), fn...))
	}
	if isDeviceError(err) {
		return fmt.Errorf("ntfs: updating the index copy of MFT record %d in directory %d: %w", r.num, parent, err)
	}
	if err != nil {
		slog.Debug("ntfs: index copy of a file name left stale", "record", r.num, "directory", parent, "err", err)
	}
	return nil
}

// fileRef is the record number with its sequence number.
func fileRef(r *record) uint64 { return r.num | uint64(r.seq)<<48 }
