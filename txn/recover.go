package txn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ErrRecoverRefused means a journal no longer describes the files it
// names (they were changed since by something other than this commit), so
// Recover writes nothing and leaves the journal for a person to judge.
var ErrRecoverRefused = errors.New("recovery refused: the image changed since its journal was written")

// Recover brings the image at path out of any interrupted transaction: it
// finishes a rollback in progress, undoes a sealed undo journal that was
// never marked applied (or replays a sealed redo journal an older offvm
// left) and drops one that was never sealed (none of which reached the
// image). It reports
// whether there was anything to do. Every offvm command calls it, under the
// image's Lock, before opening an image.
//
// It never writes a journal's bytes over newer ones: a journal marked
// applied (APLD) is only turned into the undo record, and only when every
// file still has the size and mtime the mark recorded; a sealed journal is
// undone (or replayed) only when every file's length lies between its old
// and new length, as an interrupted apply leaves it. Otherwise Recover stops with
// ErrRecoverRefused.
func Recover(path string) (recovered bool, err error) {
	if recovered, err = recoverRollbackTo(path); err != nil {
		return true, err
	}
	if fileExists(RollbackPath(path)) {
		if err := finishRollback(path); err != nil {
			return true, err
		}
		recovered = true
	}
	jpath := JournalPath(path)
	if !fileExists(jpath) {
		return recovered, nil
	}
	j, err := verifyJournal(jpath)
	if err != nil {
		if !errors.Is(err, ErrIncomplete) {
			return true, err
		}
		return true, removeDurably(jpath)
	}
	if j.Applied != nil {
		if err := checkApplied(path, j); err != nil {
			return true, err
		}
		return true, promoteJournal(path, jpath)
	}
	if err := checkReplayable(path, j); err != nil {
		return true, err
	}
	if j.Undo {
		// the commit point was never reached: undo what reached the files
		if err := undoJournal(path, jpath, FaultMidRecover); err != nil {
			return true, fmt.Errorf("txn: recover %s: undo the interrupted commit: %w", path, err)
		}
		return true, nil
	}
	if err := finishRedo(path, FaultMidRecover); err != nil {
		return true, fmt.Errorf("txn: recover %s: %w", path, err)
	}
	return true, nil
}

// checkApplied verifies that the files are as the APLD mark recorded.
func checkApplied(image string, j *journal) error {
	dir := filepath.Dir(image)
	for i, jf := range j.Files {
		fi, err := os.Stat(filepath.Join(dir, jf.Path))
		if err != nil {
			return fmt.Errorf("txn: recover %s: %w", image, err)
		}
		want := j.Applied[i]
		if fi.Size() != want.Size || fi.ModTime().UnixNano() != want.MtimeNs {
			return fmt.Errorf("txn: recover %s: %s is %d bytes modified %s, its applied journal %s recorded %d bytes at %s: %w",
				image, jf.Path, fi.Size(), fi.ModTime().UTC().Format("2006-01-02 15:04:05.000000000"),
				JournalPath(image), want.Size, fileTime(want.MtimeNs), ErrRecoverRefused)
		}
	}
	return nil
}

// checkReplayable verifies that each file's length is one an interrupted
// apply (or its undo) can leave: from the old length to the new one.
func checkReplayable(image string, j *journal) error {
	dir := filepath.Dir(image)
	for _, jf := range j.Files {
		fi, err := os.Stat(filepath.Join(dir, jf.Path))
		if err != nil {
			return fmt.Errorf("txn: recover %s: %w", image, err)
		}
		lo, hi := min(jf.OldLen, jf.NewLen), max(jf.OldLen, jf.NewLen)
		if fi.Size() < lo || fi.Size() > hi {
			return fmt.Errorf("txn: recover %s: %s is %d bytes, its journal %s goes from %d to %d bytes: %w",
				image, jf.Path, fi.Size(), JournalPath(image), jf.OldLen, jf.NewLen, ErrRecoverRefused)
		}
	}
	return nil
}

func fileTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000000000")
}
