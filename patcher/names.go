package patcher

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// winReserved are the device names Win32 cannot open as files, with or
// without an extension.
var winReserved = regexp.MustCompile(`(?i)^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?$`)

// winName says why Windows cannot hold name, or "" when it can.
func winName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Sprintf("%q leaves its directory", name)
	case !utf8.ValidString(name):
		return fmt.Sprintf("%q is not UTF-8", name)
	case len(utf16.Encode([]rune(name))) > 255:
		return fmt.Sprintf("%q is longer than 255 characters", name)
	case strings.HasSuffix(name, ".") || strings.HasSuffix(name, " "):
		return fmt.Sprintf("%q ends in a dot or a space, which Windows cannot hold", name)
	case winReserved.MatchString(name):
		return fmt.Sprintf("%q is a reserved device name on Windows", name)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`\/:*?"<>|`, r) {
			return fmt.Sprintf("%q holds %q, which Windows cannot hold in a name", name, r)
		}
	}
	return ""
}

// posixName says why name cannot be a file name on any volume, or "".
func posixName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Sprintf("%q leaves its directory", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Sprintf("%q holds a slash or a NUL", name)
	case len(name) > 255:
		return fmt.Sprintf("%q is longer than 255 bytes", name)
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
