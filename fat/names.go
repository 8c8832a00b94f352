package fat

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/offvm/offvm/internal/names"
)

// checkName refuses names Windows cannot hold (CONTRACT.md), by the rules
// every engine shares (internal/names).
func checkName(name string) error {
	if err := names.Windows(name); err != nil {
		return fmt.Errorf("fat: %w", err)
	}
	return nil
}

// fold is the key for case-insensitive comparison: every character in
// upper case, as Windows' up-case table maps them one to one.
func fold(s string) string { return strings.Map(unicode.ToUpper, s) }
