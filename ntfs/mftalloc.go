package ntfs

import (
	"encoding/binary"
	"fmt"
	"slices"
	"syscall"

	"github.com/offvm/offvm/internal/alloc"
)

// firstFreeRecord is where record allocation starts: records 16-23 are
// kept for $MFT's own extension records, as ntfs-3g and Windows do.
const firstFreeRecord = 24

// firstMFTExtension is the first record kept for $MFT's extension records.
const firstMFTExtension = 16

// mftGrowRecords is how many records $MFT grows by when it is full.
const mftGrowRecords = 64

// allocRecord finds a free MFT record, growing $MFT when none is left,
// and marks it used in $MFT's $BITMAP.
func (v *Volume) allocRecord() (uint64, error) {
	for attempt := 0; attempt < 2; attempt++ {
		r0, err := v.freshRecord(recMFT)
		if err != nil {
			return 0, err
		}
		bm, err := v.mftBitmap(r0)
		if err != nil {
			return 0, err
		}
		bits := alloc.Bitmap(bm.bits)
		nrec := min(v.mftSize/int64(v.geo.recordSize), bits.Len())
		// Records below the hint are all in use (writeState.mftFull): a
		// directory of 40,000 files would otherwise scan 5,000 full bytes
		// for every new file.
		from := max(int64(firstFreeRecord), v.w.mftFull)
		if i := bits.NextClear(from, nrec); i >= 0 { // skips full bytes
			v.w.mftFull = i + 1
			return uint64(i), v.setBitIn(bm, uint64(i), true, true)
		}
		v.w.mftFull = max(from, nrec)
		if err := v.growMFT(r0); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("ntfs: no free MFT record: %w", syscall.ENOSPC)
}

// freeRecordBit clears record n's bit in $MFT's $BITMAP.
func (v *Volume) freeRecordBit(n uint64) error {
	v.w.undoRecords = append(v.w.undoRecords, undoBit{n, false})
	return v.setRecordBit(n, false)
}

// setRecordBit sets or clears record n's bit in $MFT's $BITMAP.
func (v *Volume) setRecordBit(n uint64, on bool) error {
	r0, err := v.freshRecord(recMFT)
	if err != nil {
		return err
	}
	bm, err := v.mftBitmap(r0)
	if err != nil {
		return err
	}
	return v.setBitIn(bm, n, on, false)
}

// setBitIn sets or clears record n's bit in bm and stores it: a bitmap
// in clusters is written at once, a resident one goes into its record,
// which is written too unless bm.keep (the caller writes it later).
func (v *Volume) setBitIn(bm *mftBits, n uint64, on, undo bool) error {
	if int(n/8) >= len(bm.bits) {
		return fmt.Errorf("ntfs: record %d outside $MFT bitmap: %w", n, syscall.EIO)
	}
	if undo {
		v.w.undoRecords = append(v.w.undoRecords, undoBit{n, on})
	}
	if !on {
		v.w.mftFull = min(v.w.mftFull, int64(n))
	}
	alloc.Bitmap(bm.bits).Put(int64(n), on)
	return v.saveMFTBitmap(bm, int64(n/8))
}

// mftBits is $MFT's $BITMAP as read for an edit.
type mftBits struct {
	rec  *record // the record holding the attribute (record 0, or one of its extensions)
	off  int     // attribute offset in rec
	a    attr
	bits []byte
	keep bool // rec is written by the caller
}

func (b *mftBits) bit(n uint64) bool {
	return int(n/8) < len(b.bits) && alloc.Bitmap(b.bits).Get(int64(n))
}

// mftBitmap reads $MFT's $BITMAP from record 0, or from the extension
// record r0's attribute list names for it. A bitmap in clusters is read
// once and kept (writeState.mftBits): each new file and each deleted one
// would read all of it again (5 KiB for 40,000 records) to change one
// bit. What is kept is what the device holds, as every change goes
// through setBitIn, which writes the byte it changed at once; growMFT and
// a failed operation, which change the device behind it, drop it.
func (v *Volume) mftBitmap(r0 *record) (*mftBits, error) {
	rec, off, err := v.mftBitmapHome(r0)
	if err != nil {
		return nil, err
	}
	a, err := parseAttr(rec.buf[off:rec.used], v.clusters)
	if err != nil {
		return nil, fmt.Errorf("ntfs: $MFT $BITMAP: %w", err)
	}
	bm := &mftBits{rec: rec, off: off, a: a}
	if a.resident {
		bm.bits = append([]byte(nil), a.value...)
		return bm, nil
	}
	if a.dataSize > 64<<20 || a.startVCN != 0 || (a.lastVCN+1)*v.geo.clusterSize != a.allocSize {
		return nil, fmt.Errorf("ntfs: $MFT $BITMAP of %d bytes in one extent expected: %w", a.dataSize, syscall.EIO)
	}
	if w := v.w; w != nil && int64(len(w.mftBits)) == a.dataSize && slices.Equal(w.mftBitsRuns, a.runs) {
		bm.bits = w.mftBits
		return bm, nil
	}
	bm.bits = make([]byte, a.dataSize)
	if err := v.readRuns(a.runs, bm.bits, 0); err != nil {
		return nil, err
	}
	if w := v.w; w != nil {
		w.mftBits, w.mftBitsRuns = bm.bits, slices.Clone(a.runs)
	}
	return bm, nil
}

func (v *Volume) mftBitmapHome(r0 *record) (*record, int, error) {
	if off := r0.findAttr(atBitmap, "", false); off >= 0 {
		return r0, off, nil
	}
	if r0.findAttr(atAttrList, "", false) >= 0 {
		recs, err := v.newOp().listRecords(r0)
		if err != nil {
			return nil, 0, fmt.Errorf("ntfs: $MFT: %w", err)
		}
		for _, n := range recs {
			rr, err := v.freshRecord(n)
			if err != nil {
				return nil, 0, fmt.Errorf("ntfs: $MFT extension record %d: %w", n, err)
			}
			if off := rr.findAttr(atBitmap, "", false); off >= 0 {
				return rr, off, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("ntfs: $MFT has no $BITMAP: %w", syscall.EIO)
}

// saveMFTBitmap writes back byte i of the bitmap (or the whole resident value).
func (v *Volume) saveMFTBitmap(bm *mftBits, i int64) error {
	if bm.a.resident {
		// Edits of other attributes may have moved it in its record.
		if bm.off = bm.rec.findAttr(atBitmap, "", false); bm.off < 0 {
			return fmt.Errorf("ntfs: $MFT $BITMAP left MFT record %d: %w", bm.rec.num, syscall.EIO)
		}
		copy(bm.rec.residentValue(bm.off), bm.bits)
		if bm.keep {
			return nil
		}
		return v.writeRecord(bm.rec)
	}
	return v.writeRuns(bm.a.runs, bm.bits[i:i+1], i)
}

// emptyRecord is a formatted record that is not in use.
func emptyRecord(n uint64, size int) *record {
	buf := make([]byte, size)
	copy(buf, "FILE")
	count := size/fixupStride + 1
	binary.LittleEndian.PutUint16(buf[4:], 0x30)
	binary.LittleEndian.PutUint16(buf[6:], uint16(count))
	attrOff := align8(0x30 + 2*count)
	binary.LittleEndian.PutUint16(buf[0x14:], uint16(attrOff))
	binary.LittleEndian.PutUint32(buf[0x1c:], uint32(size))
	binary.LittleEndian.PutUint32(buf[0x2c:], uint32(n))
	binary.LittleEndian.PutUint32(buf[attrOff:], attrEndMark)
	r := &record{num: n, buf: buf, seq: 1, attrOff: attrOff, used: attrOff + 8, nextID: 0}
	return r
}
