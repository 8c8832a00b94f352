package ntfs

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostXattrs reads the user.* xattrs of a host path without following links.
func hostXattrs(t testing.TB, p string) map[string]string {
	out := map[string]string{}
	attr := make([]byte, 4)
	if n, err := unix.Lgetxattr(p, "system.ntfs_attrib", attr); err == nil && n == 4 {
		out["system.ntfs_attrib"] = attribString(attr)
	}
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

// attribString shows system.ntfs_attrib without the bits where we differ
// from ntfs-3g by design: sparse (ntfs-3g sets it on files it extended
// through holes) and compressed (ntfs-3g keeps a written compressed file
// compressed and compresses new files in a compressed directory; we
// rewrite them plain and clear the flag).
func attribString(b []byte) string {
	return fmt.Sprintf("%#x", binary.LittleEndian.Uint32(b)&^(faSparse|faCompressed))
}
