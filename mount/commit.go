package mount

import (
	"errors"
	"fmt"
	"os"

	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/detect"
	"github.com/offvm/offvm/volume"
)

// Dirty reports whether anything was written to the image while open.
func (im *Image) Dirty() bool { return im.overlay != nil && im.overlay.Dirty() }

// Sync makes every engine write what it holds into the overlay (file
// system metadata, hives) so that the overlay is the whole change.
func (im *Image) Sync() error {
	if err := im.flushRegistry(); err != nil {
		return err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	var errs []error
	for _, v := range im.vols {
		// a volume that is read-only (ext2, a hibernated NTFS) holds
		// nothing to write, and a read-only visit must not fail a commit
		if w, ok := v.FS.(volume.Writer); ok && im.readOnly == "" && v.ReadOnly == "" {
			if err := w.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("%s partition %d: %w", im.Path, v.Partition.Number, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Commit writes every change into the image file as one transaction
// (package txn): the image ends with all of them or, on error, exactly as
// it was.
func (im *Image) Commit() (txn.Result, error) { return im.CommitProgress(nil) }

// CommitProgress is Commit, calling progress(done, total) as bytes land.
func (im *Image) CommitProgress(progress func(done, total int64)) (txn.Result, error) {
	if im.overlay == nil {
		return txn.Result{}, nil
	}
	if err := im.Sync(); err != nil {
		return txn.Result{}, err
	}
	if !im.overlay.Dirty() {
		return txn.Result{}, nil
	}
	if progress == nil {
		return txn.Commit(im.Path, im.overlay, openForCommit)
	}
	return txn.CommitProgress(im.Path, im.overlay, openForCommit, progress)
}

// Discard drops every change.
func (im *Image) Discard() error {
	if im.overlay == nil {
		return nil
	}
	return im.overlay.Discard()
}

func openForCommit(path string, o vdisk.Options) (vdisk.Disk, error) {
	return detect.Open(path, detect.Options{Writable: o.Writable, OpenFile: o.OpenFile})
}

// Pending reports whether an interrupted commit or rollback waits in the
// image's sidecar files (the next writable open or `offvm check` finishes it).
func Pending(path string) bool { return pending(path) }

// pending reports whether an interrupted commit or rollback waits in the
// image's sidecar files.
func pending(path string) bool {
	for _, p := range []string{txn.JournalPath(path), txn.RollbackPath(path), txn.RollbackToPath(path)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// HoldsChanges reports whether closing the image now would lose anything:
// it first has the engines and the registry write what they hold into the
// overlay (as a commit would), then looks at the overlay. An image that
// cannot be synced counts as holding changes.
func (im *Image) HoldsChanges() bool {
	if im.overlay == nil {
		return false
	}
	if err := im.Sync(); err != nil {
		return true
	}
	return im.overlay.Dirty()
}
