package fat

import (
	"fmt"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// checkName refuses names Windows cannot hold (CONTRACT.md): reserved
// characters, control characters, a trailing dot or space.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || !utf8.ValidString(name) {
		return fmt.Errorf("fat: name %q: %w", name, syscall.EINVAL)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`\/:*?"<>|`, r) {
			return fmt.Errorf("fat: name %q holds %q, which FAT cannot store: %w", name, r, syscall.EINVAL)
		}
	}
	if last := name[len(name)-1]; last == '.' || last == ' ' {
		return fmt.Errorf("fat: name %q ends in a dot or space: %w", name, syscall.EINVAL)
	}
	if len(utf16.Encode([]rune(name))) > maxNameLen {
		return fmt.Errorf("fat: name %q is longer than 255 UTF-16 units: %w", name, syscall.ENAMETOOLONG)
	}
	return nil
}

// fold is the key for case-insensitive comparison: every character in
// upper case, as Windows' up-case table maps them one to one.
func fold(s string) string { return strings.Map(unicode.ToUpper, s) }
