package xfs

import (
	"fmt"
	"os"
	"syscall"

	"github.com/offvm/offvm/volume"
)

var _ volume.Writer = (*FS)(nil)

// notYet refuses the namespace changes the writer does not make yet
// (EROFS when read-only): nothing is written.
func (f *FS) notYet(what string) error {
	if f.w == nil {
		return fmt.Errorf("%s: %w", f.ReadOnlyReason(), syscall.EROFS)
	}
	return fmt.Errorf("xfs: %s is not supported by offvm's XFS writer (file contents, sizes, times, and creating and removing files in short-form directories are): %w", what, syscall.EOPNOTSUPP)
}

func (f *FS) Mkdir(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return volume.Attr{}, f.notYet("creating directories")
}

func (f *FS) Rmdir(dir volume.Ino, name string) error { return f.notYet("removing directories") }

func (f *FS) Rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	return f.notYet("renaming")
}

func (f *FS) Link(ino volume.Ino, dir volume.Ino, name string) (volume.Attr, error) {
	return volume.Attr{}, f.notYet("hard links")
}

func (f *FS) Symlink(dir volume.Ino, name, target string) (volume.Attr, error) {
	return volume.Attr{}, f.notYet("creating symbolic links")
}

func (f *FS) SetXattr(ino volume.Ino, name string, value []byte) error {
	return f.notYet("setting extended attributes")
}

func (f *FS) RemoveXattr(ino volume.Ino, name string) error {
	return f.notYet("removing extended attributes")
}
