// Package names holds the one set of file-name rules every engine and the
// patcher apply: what Windows can hold in a name (NTFS, FAT, bundle paths
// on a drive letter) and what any POSIX volume can (ext4, XFS, partition
// paths). Before it, three copies disagreed (only NTFS refused 0x7F, which
// Windows allows).
package names

import (
	"fmt"
	"strings"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxUnits is the longest name Windows and POSIX volumes store: 255 UTF-16
// units on NTFS and FAT (long names), 255 bytes on ext4 and XFS.
const MaxUnits = 255

// Forbidden are the characters Win32 reserves in a name, besides the
// control characters 0x00–0x1F ("Naming Files, Paths, and Namespaces").
const Forbidden = `\/:*?"<>|`

// reserved are the device names Win32 cannot open as files, with or without
// an extension. NTFS can hold them, so the engines accept them; only the
// patcher, whose bundles must install on Windows, refuses them.
var reserved = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true}

// Error says why a name cannot be stored; it unwraps to the errno a FUSE
// request answers with (EINVAL, or ENAMETOOLONG).
type Error struct {
	Name  string
	Why   string
	Errno syscall.Errno
}

func (e *Error) Error() string { return fmt.Sprintf("name %q %s", e.Name, e.Why) }
func (e *Error) Unwrap() error { return e.Errno }

func bad(name, why string) error { return &Error{Name: name, Why: why, Errno: syscall.EINVAL} }

// POSIX checks a name for any volume: not empty, not "." or "..", no slash
// or NUL, at most 255 bytes.
func POSIX(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return bad(name, "leaves its directory")
	case strings.ContainsAny(name, "/\x00"):
		return bad(name, "holds a slash or a NUL")
	case len(name) > MaxUnits:
		return &Error{Name: name, Why: fmt.Sprintf("is %d bytes, longer than %d", len(name), MaxUnits), Errno: syscall.ENAMETOOLONG}
	}
	return nil
}

// Windows checks a name for NTFS and FAT: valid UTF-8, at most 255 UTF-16
// units, none of Forbidden or the control characters, no trailing dot or
// space (Win32 strips them, so such a file could not be opened again).
func Windows(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return bad(name, "leaves its directory")
	case !utf8.ValidString(name):
		return bad(name, "is not UTF-8")
	case len(utf16.Encode([]rune(name))) > MaxUnits:
		return &Error{Name: name, Why: fmt.Sprintf("is longer than %d UTF-16 units", MaxUnits), Errno: syscall.ENAMETOOLONG}
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return bad(name, "ends in a dot or a space, which Windows cannot hold")
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(Forbidden, r) {
			return bad(name, fmt.Sprintf("holds %q, which Windows cannot hold in a name", r))
		}
	}
	return nil
}

// ReservedDevice reports whether Win32 maps name to a device (CON, NUL.txt,
// COM1 ...), whatever its case and extension.
func ReservedDevice(name string) bool {
	base, _, _ := strings.Cut(strings.ToUpper(name), ".")
	if reserved[base] {
		return true
	}
	return len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) &&
		base[3] >= '1' && base[3] <= '9'
}
