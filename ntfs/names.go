package ntfs

import (
	"fmt"
	"strings"
	"syscall"
	"unicode/utf8"
)

// checkName refuses names Windows cannot hold: the reserved characters
// \ / : * ? " < > |, control characters, a trailing dot or space, empty
// names and names longer than 255 UTF-16 units.
func checkName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("ntfs: name %q %s: %w", name, why, syscall.EINVAL)
	}
	if name == "" || !utf8.ValidString(name) {
		return bad("is empty or not UTF-8")
	}
	if len(encodeName(name)) > 255 {
		return bad("is longer than 255 UTF-16 units")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(`\/:*?"<>|`, c) {
			return bad("holds a character Windows forbids")
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return bad("ends with a dot or space")
	}
	return nil
}
