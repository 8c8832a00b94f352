package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// firstFreeRecord is where record allocation starts: records 16-23 are
// kept for $MFT's own extension records, as ntfs-3g and Windows do.
const firstFreeRecord = 24

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
		nrec := v.mftSize / int64(v.geo.recordSize)
		for i := int64(firstFreeRecord); i < nrec && i/8 < int64(len(bm.bits)); i++ {
			if bm.bits[i/8] == 0xff && i%8 == 0 { // a full byte: 8 records in use
				i += 7
				continue
			}
			if bm.bits[i/8]&(1<<(i%8)) == 0 {
				bm.bits[i/8] |= 1 << (i % 8)
				v.w.undoRecords = append(v.w.undoRecords, undoBit{uint64(i), true})
				return uint64(i), v.saveMFTBitmap(r0, bm, i/8)
			}
		}
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
	if int(n/8) >= len(bm.bits) {
		return fmt.Errorf("ntfs: record %d outside $MFT bitmap: %w", n, syscall.EIO)
	}
	if on {
		bm.bits[n/8] |= 1 << (n % 8)
	} else {
		bm.bits[n/8] &^= 1 << (n % 8)
	}
	return v.saveMFTBitmap(r0, bm, int64(n/8))
}

type mftBits struct {
	off  int // attribute offset in record 0
	a    attr
	bits []byte
}

func (v *Volume) mftBitmap(r0 *record) (*mftBits, error) {
	off := r0.findAttr(atBitmap, "", false)
	if off < 0 {
		return nil, fmt.Errorf("ntfs: $MFT has no $BITMAP: %w", syscall.EIO)
	}
	a, err := parseAttr(r0.buf[off:r0.used], v.clusters)
	if err != nil {
		return nil, fmt.Errorf("ntfs: $MFT $BITMAP: %w", err)
	}
	bm := &mftBits{off: off, a: a}
	if a.resident {
		bm.bits = append([]byte(nil), a.value...)
		return bm, nil
	}
	if a.dataSize > 64<<20 {
		return nil, fmt.Errorf("ntfs: $MFT $BITMAP of %d bytes: %w", a.dataSize, syscall.EIO)
	}
	bm.bits = make([]byte, a.dataSize)
	return bm, v.readRuns(a.runs, bm.bits, 0)
}

// saveMFTBitmap writes back byte i of the bitmap (or the whole resident value).
func (v *Volume) saveMFTBitmap(r0 *record, bm *mftBits, i int64) error {
	if bm.a.resident {
		copy(r0.residentValue(bm.off), bm.bits)
		return v.writeRecord(r0)
	}
	return v.writeRuns(bm.a.runs, bm.bits[i:i+1], i)
}

// growMFT adds mftGrowRecords formatted, unused records to $MFT and
// widens its bitmap to cover them.
func (v *Volume) growMFT(r0 *record) error {
	rs := int64(v.geo.recordSize)
	cs := v.geo.clusterSize
	doff := r0.findAttr(atData, "", false)
	if doff < 0 {
		return fmt.Errorf("ntfs: $MFT has no $DATA in its base record: %w", syscall.ENOSPC)
	}
	d, err := parseAttr(r0.buf[doff:r0.used], v.clusters)
	if err != nil || d.resident || d.startVCN != 0 || (d.lastVCN+1)*cs != d.allocSize || len(d.runs) == 0 {
		return fmt.Errorf("ntfs: $MFT data is split across records; growing it is not supported: %w", syscall.ENOSPC)
	}
	newSize := v.mftSize + mftGrowRecords*rs
	// Record 0 and the new records are written below; a failed operation
	// puts them back (undo.go) and gives the clusters back with the rest.
	s := &stream{runs: d.runs, dataSize: newSize, initSize: newSize, allocSize: d.allocSize}
	if need := (newSize+cs-1)/cs - d.allocSize/cs; need > 0 {
		b, err := v.clusterBitmap()
		if err != nil {
			return err
		}
		last := d.runs[len(d.runs)-1]
		saved := b.hint
		b.hint = last.lcn + last.length // keep $MFT contiguous
		runs, err := v.allocClusters(need, d.allocSize/cs)
		b.hint = saved
		if err != nil {
			return err
		}
		s.runs = mergeRuns(append(append([]run(nil), d.runs...), runs...))
		s.allocSize += need * cs
	}
	// Format the new records before $MFT claims them.
	oldRuns := v.mftRuns
	v.mftRuns = s.runs
	for n := v.mftSize / rs; n < newSize/rs; n++ {
		if err := v.writeRecord(emptyRecord(uint64(n), v.geo.recordSize)); err != nil {
			v.mftRuns = oldRuns
			return err
		}
	}
	if err := r0.replaceAttr(doff, nonResidentAttr(atData, "", d.flags, s, cs)); err != nil {
		v.mftRuns = oldRuns
		return fmt.Errorf("ntfs: $MFT runlist does not fit its record: %w", err)
	}
	if err := v.widenMFTBitmap(r0, newSize/rs); err != nil {
		return err
	}
	if err := v.writeRecord(r0); err != nil {
		return err
	}
	v.mftSize = newSize
	return nil
}

// widenMFTBitmap makes $MFT's bitmap hold at least nrec bits.
func (v *Volume) widenMFTBitmap(r0 *record, nrec int64) error {
	bm, err := v.mftBitmap(r0)
	if err != nil {
		return err
	}
	need := int64(align8(int((nrec + 7) / 8)))
	if need <= int64(len(bm.bits)) {
		return nil
	}
	if bm.a.resident {
		val := make([]byte, need)
		copy(val, bm.bits)
		return r0.replaceAttr(bm.off, residentAttr(atBitmap, "", val))
	}
	if need > bm.a.allocSize {
		return fmt.Errorf("ntfs: $MFT bitmap would outgrow its %d allocated bytes: %w", bm.a.allocSize, syscall.ENOSPC)
	}
	zero := make([]byte, need-bm.a.initSize)
	if err := v.writeRuns(bm.a.runs, zero, bm.a.initSize); err != nil {
		return err
	}
	s := &stream{runs: bm.a.runs, dataSize: need, initSize: need, allocSize: bm.a.allocSize}
	return r0.replaceAttr(bm.off, nonResidentAttr(atBitmap, "", bm.a.flags, s, v.geo.clusterSize))
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
