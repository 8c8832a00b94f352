package vdisk

import (
	"os"
	"path/filepath"
	"strings"
)

// ResolveParent finds the host file a child image names as its parent.
// Candidates are tried in order (a format may record several: relative and
// absolute, Unix and Windows spellings). Each is tried as given, relative to
// the child's directory, and, for Windows paths (C:\dir\p.vhd, .\p.vhd),
// with backslashes turned into slashes and finally by base name alone in the
// child's directory, which is where copied libraries keep parents.
func ResolveParent(child string, candidates ...string) (string, bool) {
	dir := filepath.Dir(child)
	var tries []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		unix := strings.ReplaceAll(c, `\`, "/")
		if len(unix) >= 2 && unix[1] == ':' { // drive letter
			unix = unix[2:]
		}
		for _, p := range []string{c, unix} {
			if filepath.IsAbs(p) {
				tries = append(tries, p)
			} else {
				tries = append(tries, filepath.Join(dir, p))
			}
		}
		tries = append(tries, filepath.Join(dir, filepath.Base(unix)))
	}
	for _, p := range tries {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			if same(p, child) {
				continue
			}
			return p, true
		}
	}
	return "", false
}

func same(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
