package ntfs

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostXattrs reads the user.* xattrs of a host path without following links.
func hostXattrs(t testing.TB, p string) map[string]string {
	out := map[string]string{}
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return out
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		val := make([]byte, 1<<20)
		k, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out[name] = string(val[:k])
	}
	return out
}
