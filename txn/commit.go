package txn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/offvm/offvm/vdisk"
)

// OpenFunc opens the image at path with opts (detect.Open, or one format's
// Open). Commit sets Writable and OpenFile; the OpenFunc fills in what else
// it needs, such as OpenParent.
type OpenFunc func(path string, opts vdisk.Options) (vdisk.Disk, error)

// Result says what a commit did.
type Result struct {
	Changed  int64 // bytes of the virtual disk that differed and were written
	Written  int64 // new bytes written to host files: data, tables, headers
	Files    int   // host files changed
	Duration time.Duration
}

// Commit writes o's changes into the image at path as one transaction
// (see the package comment). The caller holds the image's Lock. It costs
// time in proportion to the bytes changed, never to the image's size.
//
// On success the overlay is empty again and reads the committed image,
// which Commit reopens read-only through open. On failure the image is
// as it was, or (when even undoing failed) the next Recover makes it so,
// and the overlay keeps its changes: the commit can run again. A crash
// leaves the image old, or new once the journal was marked applied.
func Commit(path string, o *Overlay, open OpenFunc) (Result, error) {
	return CommitProgress(path, o, open, nil)
}

// CommitProgress is Commit calling progress (when not nil) as the commit
// advances, with bytes done and an estimated total, for a progress bar.
func CommitProgress(path string, o *Overlay, open OpenFunc, progress func(done, total int64)) (Result, error) {
	start := time.Now()
	if _, err := Recover(path); err != nil {
		return Result{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return Result{}, fmt.Errorf("txn: commit %s: overlay closed", path)
	}
	if len(o.blocks) == 0 {
		return Result{Duration: time.Since(start)}, nil
	}
	pr := newProgress(progress, o.changed)
	res, err := commitOverlay(path, o, open, pr)
	res.Duration = time.Since(start)
	if err != nil {
		return res, err
	}
	pr.finish()
	return res, o.rebase(path, open)
}

// commitOverlay stages the overlay's changes through the format, journals
// them and applies them.
func commitOverlay(path string, o *Overlay, open OpenFunc, pr *progress) (Result, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Result{}, fmt.Errorf("txn: %s: %w", path, err)
	}
	spillDir, err := pickSpillDir(abs, o.changed)
	if err != nil {
		return Result{}, err
	}
	s, err := newStager(spillDir)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	var res Result
	if res.Changed, err = stageOverlay(abs, o, open, s, pr); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			// the format wrote more than the estimate (whole clusters)
			err = fmt.Errorf("txn: staging the commit of %s in %s ran out of space (it needs the change, %s, and the format's tables there); nothing was written: %w",
				path, spillDir, humanize.IBytes(uint64(o.changed)), err)
		}
		return res, err
	}
	if jn, grow := stagedNeed(s); jn+grow > 0 {
		what := fmt.Sprintf("journal up to %s, image files grow by %s", humanize.IBytes(uint64(jn)), humanize.IBytes(uint64(grow)))
		if err := checkSpace(abs, filepath.Dir(abs), what, jn+grow); err != nil {
			return res, err
		}
	}
	fault(FaultStaged)
	j, err := writeJournal(abs, s, pr)
	if err != nil || j == nil {
		return res, err
	}
	res.Written, res.Files = j.newBytes, j.files
	recordGuest(abs, o) // history: the guest's changes, durable before the apply (history_guest.go)
	fault(FaultJournalWritten)
	return res, finishCommit(abs, j, pr)
}

// pickSpillDir chooses where staging keeps the format's writes until
// they are journaled: beside the image when there is room (the bytes land
// there anyway), else the temporary directory. The spill is freed when
// the commit ends, however it ends.
func pickSpillDir(image string, changed int64) (string, error) {
	// the format writes the changed blocks plus its tables
	need := changed + changed/64
	dir := filepath.Dir(image)
	err := checkSpace(image, dir, "staging the changed blocks", need)
	if err == nil {
		return dir, nil
	}
	var se *SpaceError
	if !errors.As(err, &se) {
		return "", err
	}
	if checkSpace(image, os.TempDir(), "staging", need) == nil {
		return os.TempDir(), nil
	}
	return "", err
}

// stageOverlay opens the image through the stager and writes every
// overlay block that differs from what the image holds.
func stageOverlay(path string, o *Overlay, open OpenFunc, s *stager, pr *progress) (int64, error) {
	d, err := open(path, vdisk.Options{Writable: true, OpenFile: s.open})
	if err != nil {
		return 0, fmt.Errorf("txn: open %s for commit: %w", path, err)
	}
	if d.Size() != o.size {
		d.Close()
		return 0, fmt.Errorf("txn: commit %s: image is %d bytes, overlay %d: %w", path, d.Size(), o.size, vdisk.ErrCorrupt)
	}
	changed, err := copyChanges(o, d, pr)
	if cerr := d.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("txn: close %s after staging: %w", path, cerr)
	}
	return changed, err
}

// copyChanges writes the runs of overlay blocks whose content differs from
// the disk's, so that a rewrite of identical bytes (a file system flushing
// what it read) costs nothing.
func copyChanges(o *Overlay, d vdisk.Disk, pr *progress) (int64, error) {
	var changed int64
	cur := make([]byte, maxRun)
	err := o.changes(func(off int64, p []byte) error {
		c := cur[:len(p)]
		if n, err := d.ReadAt(c, off); err != nil && !(err == io.EOF && n == len(c)) {
			return fmt.Errorf("txn: read image at %d: %w", off, err)
		}
		n, err := writeDiffering(d, off, p, c)
		changed += n
		pr.add(len(p))
		return err
	})
	return changed, err
}

// writeDiffering writes the runs of blocks where p (new) differs from c
// (what the disk holds at off).
func writeDiffering(d vdisk.Disk, off int64, p, c []byte) (int64, error) {
	differs := func(i int) bool {
		e := min(i+BlockSize, len(p))
		return !bytes.Equal(p[i:e], c[i:e])
	}
	var written int64
	for i := 0; i < len(p); {
		if !differs(i) {
			i += BlockSize
			continue
		}
		j := i + BlockSize
		for j < len(p) && differs(j) {
			j += BlockSize
		}
		j = min(j, len(p))
		if _, err := d.WriteAt(p[i:j], off+int64(i)); err != nil {
			return written, fmt.Errorf("txn: write image at %d: %w", off+int64(i), err)
		}
		written += int64(j - i)
		i = j
	}
	return written, nil
}

// writeJournal writes the undo journal of the staged changes and makes
// it durable, file and name: only then may any byte go into place. nil
// with no error means the format changed no byte of any host file, so
// there is nothing to commit.
func writeJournal(image string, s *stager, pr *progress) (*journalWriter, error) {
	jpath := JournalPath(image)
	j, err := createJournal(jpath, true)
	if err != nil {
		return nil, err
	}
	j.pr = pr
	if err := journalStaged(j, filepath.Dir(image), s); err != nil {
		j.abort()
		return nil, err
	}
	if j.regions == 0 && !lengthsChange(s) {
		j.abort()
		return nil, nil
	}
	if err := j.commit(); err != nil {
		j.abort()
		return nil, err
	}
	if err := syncDir(filepath.Dir(jpath)); err != nil {
		// nothing is in place: an undo of this journal would change nothing
		os.Remove(jpath)
		return nil, fmt.Errorf("%w (nothing was written to the image)", err)
	}
	return j, nil
}

func lengthsChange(s *stager) bool {
	for _, st := range s.order {
		if st.size != st.realSize {
			return true
		}
	}
	return false
}

// finishCommit writes the new bytes of a sealed undo journal into place,
// then marks the journal applied (the commit point) and turns it into the
// undo record. Any failure before the mark is undone from the journal.
func finishCommit(image string, j *journalWriter, pr *progress) error {
	jpath := JournalPath(image)
	stats, err := applyInPlace(image, j, FaultMidApply, pr)
	if err != nil {
		return undoFailedApply(image, jpath, err)
	}
	fault(FaultApplied)
	if err := appendApplied(jpath, j.commitEnd, stats); err != nil {
		// the mark may or may not have reached the disk: undo, so that the
		// image is as it was, as the error says
		return undoFailedApply(image, jpath, err)
	}
	fault(FaultBeforeUndo)
	return promoteJournal(image, jpath)
}

// finishRedo replays a sealed redo journal (left by an older offvm),
// marks it applied and turns it into the undo record.
func finishRedo(image, faultPoint string) error {
	jpath := JournalPath(image)
	j, stats, err := applyJournal(image, jpath, false, faultPoint, nil)
	if err != nil {
		return undoFailedApply(image, jpath, err)
	}
	if err := appendApplied(jpath, j.CommitEnd, stats); err != nil {
		return err
	}
	return promoteJournal(image, jpath)
}

// undoFailedApply puts the old bytes back after an apply that failed
// half-way (a full disk, an I/O error), so that the image is as it was
// rather than half committed, and drops the journal. Undoing needs no
// more space than the old image took.
func undoFailedApply(image, jpath string, cause error) error {
	if errors.Is(cause, ErrIncomplete) {
		return fmt.Errorf("txn: apply journal of %s: %w", image, cause)
	}
	if err := undoJournal(image, jpath, ""); err != nil {
		return fmt.Errorf("txn: apply journal of %s: %w; undoing it failed too, the next Recover retries: %v", image, cause, err)
	}
	return fmt.Errorf("txn: commit to %s failed and was undone, the image is as it was: %w", image, cause)
}

// undoJournal writes a sealed journal's old bytes back, sets every file to
// its old length, and drops the journal: the image is as before the
// commit, byte for byte, whatever part of it had reached the files.
func undoJournal(image, jpath, faultPoint string) error {
	if _, _, err := applyJournal(image, jpath, true, faultPoint, nil); err != nil {
		return err
	}
	return removeDurably(jpath)
}

// rebase points the overlay, now empty, at the committed image: the old
// base's cached tables no longer describe the files.
func (o *Overlay) rebase(path string, open OpenFunc) error {
	nb, err := open(path, vdisk.Options{})
	if err == nil && nb.Size() != o.size {
		nb.Close()
		err = fmt.Errorf("size changed to %d: %w", nb.Size(), vdisk.ErrCorrupt)
	}
	if err != nil {
		o.closed = true
		o.tmp.Close()
		o.base.Close()
		return fmt.Errorf("txn: %s committed, but reopening it failed (overlay closed): %w", path, err)
	}
	err = o.base.Close()
	o.base = nb
	return errors.Join(o.reset(), err)
}
