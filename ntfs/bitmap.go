package ntfs

import (
	"fmt"
	"syscall"

	"github.com/offvm/offvm/internal/alloc"
)

// bitmap is $Bitmap held in memory while writing; every change is written
// back at once (the 512-byte blocks it touches).
type bitmap struct {
	bits alloc.Bitmap
	runs []run
	n    int64 // clusters on the volume
	hint int64 // where the next search starts: keeps files contiguous
}

func (b *bitmap) get(i int64) bool { return b.bits.Get(i) }

func (b *bitmap) set(i int64, on bool) { b.bits.Put(i, on) }

func (v *Volume) clusterBitmap() (*bitmap, error) {
	if v.w.bitmap != nil {
		return v.w.bitmap, nil
	}
	in, err := v.loadInode(recBitmap)
	if err != nil {
		return nil, fmt.Errorf("ntfs: $Bitmap: %w", err)
	}
	s := in.find(atData, "")
	if s == nil || s.resident || s.dataSize*8 < v.clusters || s.dataSize > v.clusters/8+1<<20 {
		return nil, fmt.Errorf("ntfs: $Bitmap does not cover the volume: %w", syscall.EIO)
	}
	// Data starts past the MFT zone (an eighth of the volume after $MFT,
	// as ntfs-3g and Windows keep it) so that $MFT can grow contiguously.
	hint := v.geo.mftLCN + v.clusters/8
	if hint >= v.clusters {
		hint = 0
	}
	b := &bitmap{bits: make([]byte, s.dataSize), runs: s.runs, n: v.clusters, hint: hint}
	if err := v.readRuns(s.runs, b.bits, 0); err != nil {
		return nil, fmt.Errorf("ntfs: $Bitmap: %w", err)
	}
	v.w.bitmap = b
	return b, nil
}

// flushBits writes back the bitmap bytes covering clusters [lo, hi).
func (v *Volume) flushBits(b *bitmap, lo, hi int64) error {
	start := (lo >> 3) &^ 511
	end := min(int64(len(b.bits)), ((hi-1)>>3+512)&^511)
	if err := v.writeRuns(b.runs, b.bits[start:end], start); err != nil {
		return fmt.Errorf("ntfs: writing $Bitmap: %w", err)
	}
	return nil
}

// allocClusters finds n free clusters, contiguous when possible, marks
// them used and returns them as runs starting at vcn.
func (v *Volume) allocClusters(n, vcn int64) ([]run, error) {
	b, err := v.clusterBitmap()
	if err != nil {
		return nil, err
	}
	var out []run
	if lcn := b.findFree(n); lcn >= 0 {
		out = []run{{vcn: vcn, lcn: lcn, length: n}}
	} else {
		out = b.gather(n, vcn)
		if out == nil {
			return nil, fmt.Errorf("ntfs: no room for %d clusters: %w", n, syscall.ENOSPC)
		}
	}
	for _, r := range out {
		v.w.undoClusters = append(v.w.undoClusters, undoRun{r.lcn, r.length, true})
		for i := r.lcn; i < r.lcn+r.length; i++ {
			b.set(i, true)
		}
		if err := v.flushBits(b, r.lcn, r.lcn+r.length); err != nil {
			return nil, err
		}
		b.hint = r.lcn + r.length
	}
	return out, nil
}

// findFree returns the first run of n free clusters from the hint on
// (wrapping around), or -1.
func (b *bitmap) findFree(n int64) int64 {
	if lcn := b.bits.FindClear(b.hint, b.n, n); lcn >= 0 {
		return lcn
	}
	return b.bits.FindClear(0, min(b.hint+n, b.n), n)
}

// gather collects n free clusters in pieces, or returns nil.
func (b *bitmap) gather(n, vcn int64) []run {
	var out []run
	for _, e := range b.bits.Gather(b.n, n) {
		out = append(out, run{vcn: vcn, lcn: e.Start, length: e.Len})
		vcn += e.Len
	}
	return out
}

// freeRuns marks the clusters of runs free.
func (v *Volume) freeRuns(runs []run) error {
	b, err := v.clusterBitmap()
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.lcn < 0 {
			continue
		}
		if r.lcn+r.length > b.n {
			return fmt.Errorf("ntfs: freeing clusters %d+%d outside the volume: %w", r.lcn, r.length, syscall.EIO)
		}
		v.w.undoClusters = append(v.w.undoClusters, undoRun{r.lcn, r.length, false})
		for i := r.lcn; i < r.lcn+r.length; i++ {
			b.set(i, false)
		}
		if err := v.flushBits(b, r.lcn, r.lcn+r.length); err != nil {
			return err
		}
	}
	return nil
}

// undoRun and undoBit remember what an operation changed in the bitmaps,
// so that a failed operation (whose records are never written) can give
// the clusters and records back.
type undoRun struct {
	lcn, length int64
	allocated   bool
}

type undoBit struct {
	n         uint64
	allocated bool
}

// rollback reverts the bitmap changes of a failed operation, newest first.
func (v *Volume) rollback() {
	w := v.w
	if w == nil {
		return
	}
	for i := len(w.undoClusters) - 1; i >= 0; i-- {
		u := w.undoClusters[i]
		if b := w.bitmap; b != nil {
			for c := u.lcn; c < u.lcn+u.length; c++ {
				b.set(c, !u.allocated)
			}
			v.flushBits(b, u.lcn, u.lcn+u.length)
		}
	}
	for i := len(w.undoRecords) - 1; i >= 0; i-- {
		v.setRecordBit(w.undoRecords[i].n, !w.undoRecords[i].allocated)
	}
	w.undoClusters, w.undoRecords = nil, nil
}
