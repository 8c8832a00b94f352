package ntfs

import (
	"fmt"
	"syscall"
)

// writeState holds what the write side keeps between operations.
type writeState struct {
	bitmap   *bitmap // $Bitmap, loaded on first allocation
	mirrRecs int     // records mirrored in $MFTMirr
	mirrRuns []run

	// What the running operation changed in the bitmaps (see rollback).
	undoClusters []undoRun
	undoRecords  []undoBit
	undoWrites   []undoWrite
	undoArena    []byte // holds undoWrites' old bytes (undoBytes)
	inOp         bool

	// Scratch for what is written and not kept: a record with its update
	// sequence applied, an INDX block (the devices copy what they are
	// given, as io.WriterAt requires).
	recScratch, blockScratch []byte

	// mftFull: the records from firstFreeRecord up to it are all in use
	// in $MFT's $BITMAP, so allocRecord searches from there. Every bit
	// cleared lowers it (setBitIn); an undone operation, whose restored
	// bytes may clear bits behind setBitIn's back, resets it.
	mftFull int64

	secure *secureState // $Secure's descriptors, loaded at the first new file

	// $MFT's $BITMAP when it lies in clusters, as on the device, and the
	// runs it was read from (mftBitmap); nil when not loaded.
	mftBits     []byte
	mftBitsRuns []run
}

// beginWrite is called with v.mu held for writing before any change: it
// refuses read-only volumes and, the first time, empties $LogFile.
func (v *Volume) beginWrite() error {
	if v.roReason != "" {
		return fmt.Errorf("ntfs: volume is read-only (%s): %w", v.roReason, syscall.EROFS)
	}
	if v.w != nil {
		return nil
	}
	w := &writeState{}
	mirr, err := v.loadInode(recMFTMirr)
	if err != nil {
		return err
	}
	if s := mirr.find(atData, ""); s != nil && !s.resident {
		w.mirrRuns = s.runs
		w.mirrRecs = int(s.dataSize / int64(v.geo.recordSize))
	}
	if err := v.emptyLogFile(); err != nil {
		return err
	}
	v.w = w
	// From now on the volume changes: repeated small reads of what the
	// operations edit are served from memory (devcache.go). No reader runs
	// while the write lock is held.
	v.dev = newDevCache(v.dev)
	return nil
}

// writeRecord stores a record in $MFT (and $MFTMirr for the first ones),
// with its update sequence applied to a copy.
func (v *Volume) writeRecord(r *record) error {
	r.syncHeader()
	var buf []byte
	if v.w != nil {
		v.w.recScratch = append(v.w.recScratch[:0], r.buf...)
		buf = v.w.recScratch
	} else {
		buf = append([]byte(nil), r.buf...)
	}
	protectFixup(buf)
	copy(r.buf[:0x30], buf[:0x30]) // keep the sequence number that was used
	owner := r.num
	if r.base != 0 {
		owner = r.base // an extension record: its file's inode changes
	}
	v.cache.forgetInode(owner)
	off := int64(r.num) * int64(v.geo.recordSize)
	if err := v.writeRuns(v.mftRuns, buf, off); err != nil {
		return fmt.Errorf("ntfs: writing MFT record %d: %w", r.num, err)
	}
	if v.w != nil && int(r.num) < v.w.mirrRecs {
		if err := v.writeRuns(v.w.mirrRuns, buf, off); err != nil {
			return fmt.Errorf("ntfs: writing $MFTMirr record %d: %w", r.num, err)
		}
	}
	return nil
}

// writeRuns writes p at byte off of the stream that runs map; holes and
// unmapped ranges are an error (callers allocate first).
func (v *Volume) writeRuns(runs []run, p []byte, off int64) error {
	cs := v.geo.clusterSize
	for len(p) > 0 {
		i := findRun(runs, off/cs)
		if i < 0 || runs[i].lcn < 0 {
			return fmt.Errorf("write to unallocated cluster %d: %w", off/cs, syscall.EIO)
		}
		r := runs[i]
		n := min(int64(len(p)), (r.vcn+r.length)*cs-off)
		pos := r.lcn*cs + off - r.vcn*cs
		if err := v.devWrite(p[:n], pos); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// freshRecord reads a record for editing, bypassing the cache.
func (v *Volume) freshRecord(n uint64) (*record, error) {
	r, err := v.readRecord(n)
	if err != nil {
		return nil, err
	}
	if r.flags&recInUse == 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is not in use: %w", n, syscall.ENOENT)
	}
	return r, nil
}

// Sync has nothing to flush: every change is written through to the
// device when the operation returns.
func (v *Volume) Sync() error { return nil }
