package patcher

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/offvm/offvm/internal/names"
)

// winName says why Windows cannot hold name, or "" when it can: the
// engines' rules (internal/names) and, as a bundle must install on Windows,
// no device names (CON, NUL.txt ...), which Win32 cannot open as files.
func winName(name string) string {
	if err := names.Windows(name); err != nil {
		return err.Error()
	}
	if names.ReservedDevice(name) {
		return fmt.Sprintf("name %q is a reserved device name on Windows", name)
	}
	return ""
}

// posixName says why name cannot be a file name on any volume, or "".
func posixName(name string) string {
	if err := names.POSIX(name); err != nil {
		return err.Error()
	}
	return ""
}

// volumeName parses a volume's name as files/ and delete paths spell it:
// a drive letter ("C", "c") or a partition ("p3").
func volumeName(s string) (drive string, part int, ok bool) {
	if len(s) == 1 && (s[0]|0x20) >= 'a' && (s[0]|0x20) <= 'z' {
		return strings.ToUpper(s), 0, true
	}
	if len(s) >= 2 && len(s) <= 4 && s[0] == 'p' {
		n, err := strconv.Atoi(s[1:])
		if err == nil && n >= 0 && strconv.Itoa(n) == s[1:] {
			return "", n, true
		}
	}
	return "", 0, false
}

// checkName validates one path component for the volume it goes to:
// Windows rules on a drive letter, POSIX rules on a partition number (the
// engine applies its own rules there when the change is made).
func checkName(t Target, name string) error {
	why := posixName(name)
	if why == "" && t.Drive != "" {
		why = winName(name)
	}
	if why != "" {
		return fmt.Errorf("%s", why)
	}
	return nil
}

// parseWinPath reads a delete entry: C:\Dir\File (or C:/Dir/File), or
// p1:/dir/file for a partition by number.
func parseWinPath(s string) (Target, error) {
	vol, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Target{}, fmt.Errorf("name a drive (C:\\...) or a partition (p1:/...)")
	}
	var t Target
	if t.Drive, t.Part, ok = volumeName(vol); !ok {
		return Target{}, fmt.Errorf("%q is neither a drive letter nor a partition (p1)", vol)
	}
	if rest == "" || (rest[0] != '\\' && rest[0] != '/') {
		return Target{}, fmt.Errorf("the path must be absolute on its volume")
	}
	for _, part := range strings.FieldsFunc(rest, func(r rune) bool { return r == '\\' || r == '/' }) {
		if err := checkName(t, part); err != nil {
			return Target{}, err
		}
		t.Path = append(t.Path, part)
	}
	if len(t.Path) == 0 {
		return Target{}, fmt.Errorf("deleting a whole volume is refused")
	}
	return t, nil
}
