package txn

import (
	"path/filepath"
	"strings"
)

// Suffixes of the files txn keeps beside an image.
const (
	JournalSuffix  = ".offvm-journal"  // commit in progress
	UndoSuffix     = ".offvm-undo"     // last commit, for Rollback
	RollbackSuffix = ".offvm-rollback" // rollback in progress
	HistorySuffix  = ".offvm-history"  // directory of older undo records and every commit's manifest
	// tempPrefix names temporary files that exist only when O_TMPFILE is
	// unavailable, and then only between create and unlink.
	tempPrefix = ".offvm-tmp-"
)

// JournalPath is where the journal of a commit to image lives.
func JournalPath(image string) string { return image + JournalSuffix }

// UndoPath is where the undo record of image's last commit lives.
func UndoPath(image string) string { return image + UndoSuffix }

// RollbackPath is where a rollback in progress keeps its record.
func RollbackPath(image string) string { return image + RollbackSuffix }

// IsSidecar reports whether a file name (base name or path) is one of the
// files txn keeps beside images, which a library listing should hide.
func IsSidecar(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, JournalSuffix) ||
		strings.HasSuffix(base, UndoSuffix) ||
		strings.HasSuffix(base, RollbackSuffix) ||
		strings.HasSuffix(base, HistorySuffix) ||
		strings.HasPrefix(base, tempPrefix)
}

// HasUndo reports whether image has an undo record, i.e. whether Rollback
// has something to restore.
func HasUndo(image string) bool { return fileExists(UndoPath(image)) }
