package ntfs

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/offvm/offvm/internal/devio"
)

// An operation writes the device as it goes (index blocks, bitmaps,
// data) and its records at the end. Every write made while it runs first
// keeps the bytes it replaces, unless they lie in clusters the operation
// itself allocated (free before it, so nothing to keep); when the
// operation fails anywhere — no space while splitting an index, a full
// MFT, an I/O error of the device — the kept bytes are put back, newest
// first, and the volume is exactly as before the operation.

// deviceError is a failed read of the device (a failed write is a
// *devio.Error).
type deviceError struct {
	off int64
	err error
}

func (e *deviceError) Error() string {
	return fmt.Sprintf("ntfs: device I/O at byte %d: %v", e.off, e.err)
}

func (e *deviceError) Unwrap() error { return syscall.EIO }

// isDeviceError says whether err is the device failing, as opposed to a
// structure the operation could not edit.
func isDeviceError(err error) bool {
	var de *deviceError
	var we *devio.Error
	return errors.As(err, &de) || errors.As(err, &we)
}

// undoWrite is the old content of bytes an operation overwrote.
type undoWrite struct {
	off int64
	old []byte
}

// devWrite writes p at pos of the device, keeping the old bytes first
// while an operation runs.
func (v *Volume) devWrite(p []byte, pos int64) error {
	if w := v.w; w != nil && w.inOp && !v.freshBytes(pos, int64(len(p))) {
		old := w.undoBytes(len(p))
		if _, err := v.dev.ReadAt(old, pos); err != nil {
			return &deviceError{pos, err}
		}
		w.undoWrites = append(w.undoWrites, undoWrite{pos, old})
	}
	return devio.Write(v.dev, p, pos)
}

// undoBytes is room for n old bytes in the op's undo arena: the kept
// bytes of every op are dropped at its end (endOp, undoOp), so the next
// op reuses the same memory instead of allocating each write's copy.
func (w *writeState) undoBytes(n int) []byte {
	if len(w.undoArena)+n > cap(w.undoArena) {
		// a new chunk; the kept bytes in the old one stay where they are
		w.undoArena = make([]byte, 0, max(n, 2*cap(w.undoArena), 64<<10))
	}
	w.undoArena = w.undoArena[:len(w.undoArena)+n]
	return w.undoArena[len(w.undoArena)-n : len(w.undoArena) : len(w.undoArena)]
}

// freshBytes says whether bytes [pos, pos+n) lie in clusters the running
// operation allocated.
func (v *Volume) freshBytes(pos, n int64) bool {
	cs := v.geo.clusterSize
	lo, hi := pos/cs, (pos+n-1)/cs
	for _, u := range v.w.undoClusters {
		if u.allocated && lo >= u.lcn && hi < u.lcn+u.length {
			return true
		}
	}
	return false
}

// opState is what an operation may change in memory besides the bitmaps.
type opState struct {
	mftRuns []run
	mftSize int64
}

// beginOp starts recording an operation's writes.
func (v *Volume) beginOp() opState {
	w := v.w
	w.undoClusters, w.undoRecords, w.undoWrites = nil, nil, nil
	w.undoArena = w.undoArena[:0] // the last op's kept bytes are no longer needed
	w.inOp = true
	return opState{mftRuns: append([]run(nil), v.mftRuns...), mftSize: v.mftSize}
}

// endOp forgets the record of a successful operation.
func (v *Volume) endOp() {
	w := v.w
	w.inOp = false
	w.undoClusters, w.undoRecords, w.undoWrites = nil, nil, nil
}

// undoOp puts back everything a failed operation wrote. Should the
// device refuse even that, the volume is made read-only: its state is
// then unknown, and the overlay beneath still holds the last good one.
func (v *Volume) undoOp(st opState) {
	w := v.w
	w.inOp = false
	v.rollback() // the bitmaps in memory (their bytes on disk are restored below)
	for i := len(w.undoWrites) - 1; i >= 0; i-- {
		u := w.undoWrites[i]
		if err := devio.Write(v.dev, u.old, u.off); err != nil {
			v.roReason = fmt.Sprintf("an I/O error stopped a write and undoing it (%v)", err)
			slog.Error("ntfs: cannot undo a failed operation; the volume is now read-only", "err", err)
			break
		}
	}
	w.undoWrites = nil
	w.mftFull = 0
	w.mftBits = nil // its bytes on the device were put back behind it
	v.mftRuns, v.mftSize = st.mftRuns, st.mftSize
	w.secure = nil // it may hold a descriptor the op added
	v.cache.purge()
}
