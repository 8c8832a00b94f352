package xfs

import (
	"fmt"
	"syscall"

	"github.com/offvm/offvm/volume"
)

var _ volume.Writer = (*FS)(nil)

// notYet refuses the changes the writer does not make yet (EROFS when
// read-only): nothing is written.
func (f *FS) notYet(what string) error {
	if f.w == nil {
		return fmt.Errorf("%s: %w", f.ReadOnlyReason(), syscall.EROFS)
	}
	return fmt.Errorf("xfs: %s is not supported by offvm's XFS writer (file contents, sizes, times, modes, owners, names and short-form extended attributes are): %w", what, syscall.EOPNOTSUPP)
}
