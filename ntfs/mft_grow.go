package ntfs

import (
	"fmt"
	"slices"
	"sort"
	"syscall"
)

// Growing $MFT. Its $DATA maps every record, itself included, so its
// runlist may only live where a reader finds it before it needs it:
// the extent at VCN 0 in record 0, later extents in records 16-23,
// which Windows and ntfs-3g keep for them and which that first extent
// maps. When the runlist outgrows record 0 (a long-lived volume whose
// free space was fragmented when $MFT grew), record 0 gets an
// $ATTRIBUTE_LIST and the runlist is laid out over it and those
// records with the code every other stream uses (split_stream.go);
// only the choice of extension records differs (op.mft).

// growMFT adds mftGrowRecords formatted, unused records to $MFT and
// widens its bitmap to cover them. r0 is record 0 as read for the
// running allocation.
func (v *Volume) growMFT(r0 *record) error {
	// the growth edits a copy of the bitmap and may move it
	v.w.mftBits = nil
	defer func() { v.w.mftBits = nil }()
	rs := int64(v.geo.recordSize)
	newSize := v.mftSize + mftGrowRecords*rs
	o := v.newOp()
	o.add(r0)
	d, err := o.openAttr(r0, atData, "")
	if err != nil {
		return fmt.Errorf("ntfs: $MFT $DATA: %w", err)
	}
	if d.s.resident || d.s.dataSize != v.mftSize || d.s.allocSize < v.mftSize || len(d.s.runs) == 0 {
		return fmt.Errorf("ntfs: $MFT $DATA of %d bytes does not match the %d bytes in use: %w", d.s.dataSize, v.mftSize, syscall.EIO)
	}
	bm, err := v.mftBitmap(r0)
	if err != nil {
		return err
	}
	if bm.rec != r0 { // the op's copy, written with the others
		if bm.rec, err = o.rec(bm.rec.num); err != nil {
			return err
		}
		o.add(bm.rec)
	}
	bm.keep = true
	o.mft = bm
	if err := v.widenMFTBitmap(bm, newSize/rs); err != nil {
		return err
	}
	runs, alloc, err := v.mftClusters(d.s, newSize)
	if err != nil {
		return err
	}
	d.s.runs, d.s.allocSize, d.s.dataSize, d.s.initSize = runs, alloc, newSize, newSize
	oldRuns := v.mftRuns
	fail := func(err error) error { v.mftRuns = oldRuns; return err }
	// Format the new records before $MFT claims them.
	v.mftRuns = runs
	for n := v.mftSize / rs; n < newSize/rs; n++ {
		if err := v.writeRecord(emptyRecord(uint64(n), v.geo.recordSize)); err != nil {
			return fail(err)
		}
	}
	d.relocate() // the bitmap's edit may have moved it
	if err := v.saveData(d); err != nil {
		return fail(fmt.Errorf("ntfs: $MFT runlist of %d runs: %w", len(runs), err))
	}
	if err := v.checkMFTLayout(o, d); err != nil {
		return fail(err)
	}
	if err := v.writeMFTRecords(o); err != nil {
		return fail(err)
	}
	v.mftSize = newSize
	return nil
}

// mftClusters allocates the clusters newSize bytes of $MFT need beyond
// s, after its last run when they are free there.
func (v *Volume) mftClusters(s *stream, newSize int64) ([]run, int64, error) {
	cs := v.geo.clusterSize
	need := (newSize+cs-1)/cs - s.allocSize/cs
	if need <= 0 {
		return s.runs, s.allocSize, nil
	}
	b, err := v.clusterBitmap()
	if err != nil {
		return nil, 0, err
	}
	last := s.runs[len(s.runs)-1]
	saved := b.hint
	b.hint = last.lcn + last.length // keep $MFT contiguous where it can be
	got, err := v.allocClusters(need, s.allocSize/cs)
	b.hint = saved
	if err != nil {
		return nil, 0, err
	}
	return mergeRuns(append(slices.Clone(s.runs), got...)), s.allocSize + need*cs, nil
}

// checkMFTLayout refuses a layout a reader could not follow: the first
// extent must stay in record 0 and map every record holding a later one.
// It also marks those records in the bitmap (a resident bitmap edited
// during the layout may have been rolled back with record 0).
func (v *Volume) checkMFTLayout(o *op, d *dataAttr) error {
	r0 := d.r
	off := r0.findAttr(atData, "", false)
	if off < 0 {
		return fmt.Errorf("ntfs: $MFT's first extent left record 0: %w", syscall.ENOSPC)
	}
	a, err := parseAttr(r0.buf[off:r0.used], v.clusters)
	if err != nil || a.resident || a.startVCN != 0 {
		return fmt.Errorf("ntfs: $MFT's first extent left record 0 (%v): %w", err, syscall.ENOSPC)
	}
	mapped := (a.lastVCN + 1) * v.geo.clusterSize
	if d.sp == nil {
		return nil
	}
	bm, err := v.mftBitmap(r0)
	if err != nil {
		return err
	}
	if o.mft.rec != r0 {
		bm = o.mft
	}
	bm.keep = true
	for _, n := range d.sp.recs {
		if end := int64(n+1) * int64(v.geo.recordSize); end > mapped {
			return fmt.Errorf("ntfs: $MFT extension record %d lies outside the %d bytes its first extent maps: %w", n, mapped, syscall.ENOSPC)
		}
		if !bm.bit(n) {
			if err := v.setBitIn(bm, n, true, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeMFTRecords writes what growing $MFT changed: the extension
// records first, record 0 (which names them) last.
func (v *Volume) writeMFTRecords(o *op) error {
	var nums []uint64
	for n := range o.dirty {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] > nums[j] }) // record 0 last
	for _, n := range nums {
		if err := v.writeRecord(o.recs[n]); err != nil {
			return err
		}
	}
	return nil
}

// allocMFTExtension picks a record for one of $MFT's own extents among
// records 16-23: free in the bitmap and not in use.
func (v *Volume) allocMFTExtension(o *op) (uint64, error) {
	bm := o.mft
	for n := uint64(firstMFTExtension); n < firstFreeRecord; n++ {
		if bm.bit(n) || o.recs[n] != nil {
			continue
		}
		if r, err := v.readRecord(n); err == nil && r.flags&recInUse != 0 {
			continue
		}
		return n, v.setBitIn(bm, n, true, true)
	}
	return 0, fmt.Errorf("ntfs: records %d-%d, kept for $MFT's runlist, are all used: %w", firstMFTExtension, firstFreeRecord-1, syscall.ENOSPC)
}

// widenMFTBitmap makes $MFT's bitmap hold at least nrec bits, giving it
// one more cluster when its allocation is full.
func (v *Volume) widenMFTBitmap(bm *mftBits, nrec int64) error {
	need := int64(align8(int((nrec + 7) / 8)))
	if need <= int64(len(bm.bits)) {
		return nil
	}
	rec := bm.rec
	if bm.a.resident {
		val := make([]byte, need)
		copy(val, bm.bits)
		bm.bits = val
		return rec.replaceAttr(bm.off, residentAttr(atBitmap, "", val))
	}
	cs := v.geo.clusterSize
	runs, alloc := bm.a.runs, bm.a.allocSize
	if need > alloc {
		extra := (need - alloc + cs - 1) / cs
		last := runs[len(runs)-1]
		b, err := v.clusterBitmap()
		if err != nil {
			return err
		}
		saved := b.hint
		b.hint = last.lcn + last.length
		got, err := v.allocClusters(extra, alloc/cs)
		b.hint = saved
		if err != nil {
			return err
		}
		runs, alloc = mergeRuns(append(slices.Clone(runs), got...)), alloc+extra*cs
	}
	if err := v.writeRuns(runs, make([]byte, need-bm.a.initSize), bm.a.initSize); err != nil {
		return err
	}
	s := &stream{runs: runs, dataSize: need, initSize: need, allocSize: alloc}
	if err := rec.replaceAttr(bm.off, nonResidentAttr(atBitmap, "", bm.a.flags, s, cs)); err != nil {
		return fmt.Errorf("ntfs: $MFT $BITMAP runlist does not fit MFT record %d: %w", rec.num, err)
	}
	bm.bits = append(bm.bits, make([]byte, need-int64(len(bm.bits)))...)
	bm.a.runs, bm.a.allocSize, bm.a.dataSize, bm.a.initSize = runs, alloc, need, need
	return nil
}
