package ntfs

import (
	"fmt"

	"github.com/offvm/offvm/internal/names"
)

// checkName refuses names Windows cannot hold, by the rules every engine
// shares (internal/names).
func checkName(name string) error {
	if err := names.Windows(name); err != nil {
		return fmt.Errorf("ntfs: %w", err)
	}
	return nil
}
