package txn

import (
	"errors"
	"fmt"
)

// Recover brings the image at path out of any interrupted transaction: it
// finishes a rollback in progress, replays a sealed journal and drops one
// that was never sealed (none of which reached the image). It reports
// whether there was anything to do. Every offvm command calls it, under the
// image's Lock, before opening an image.
func Recover(path string) (recovered bool, err error) {
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
	if _, err := verifyJournal(jpath); err != nil {
		if !errors.Is(err, ErrIncomplete) {
			return true, err
		}
		return true, removeDurably(jpath)
	}
	if err := finishCommit(path, FaultMidRecover, nil); err != nil {
		return true, fmt.Errorf("txn: recover %s: %w", path, err)
	}
	return true, nil
}
