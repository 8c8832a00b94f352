package ntfs

import (
	"fmt"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// WriteAt writes file content.
func (v *Volume) WriteAt(ino volume.Ino, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ntfs: negative offset: %w", syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	err := v.do(func(o *op) error {
		r, err := o.fileRec(ino)
		if err != nil {
			return err
		}
		if err := o.wofUnwrap(r); err != nil {
			return err
		}
		d, err := o.openStream(r, "")
		if isSplitStream(err) {
			done, werr := v.overwriteInPlace(r.num, "", p, off)
			if werr != nil || !done {
				return err
			}
		} else if err != nil {
			return err
		} else if err := v.writeData(d, p, off); err != nil {
			return err
		}
		if err := touch(r); err != nil {
			return err
		}
		return o.refreshFileNames(r)
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Truncate sets a file's size.
func (v *Volume) Truncate(ino volume.Ino, size int64) error {
	if size < 0 {
		return fmt.Errorf("ntfs: negative size: %w", syscall.EINVAL)
	}
	return v.do(func(o *op) error {
		r, err := o.fileRec(ino)
		if err != nil {
			return err
		}
		if err := o.wofUnwrap(r); err != nil {
			return err
		}
		d, err := o.openStream(r, "")
		if err != nil {
			return err
		}
		if err := v.truncateData(d, size); err != nil {
			return err
		}
		if err := touch(r); err != nil {
			return err
		}
		return o.refreshFileNames(r)
	})
}
