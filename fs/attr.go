package fs

import (
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/volume"
)

// unixMode turns Go's FileMode into st_mode bits.
func unixMode(m os.FileMode) uint32 {
	perm := uint32(m.Perm())
	switch {
	case m&os.ModeDir != 0:
		return syscall.S_IFDIR | perm
	case m&os.ModeSymlink != 0:
		return syscall.S_IFLNK | perm
	case m&os.ModeNamedPipe != 0:
		return syscall.S_IFIFO | perm
	case m&os.ModeSocket != 0:
		return syscall.S_IFSOCK | perm
	case m&os.ModeCharDevice != 0:
		return syscall.S_IFCHR | perm
	case m&os.ModeDevice != 0:
		return syscall.S_IFBLK | perm
	}
	return syscall.S_IFREG | perm
}

func setTime(t time.Time) (uint64, uint32) {
	if t.IsZero() {
		return 0, 0
	}
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// fillAttr copies an engine's attributes into a FUSE attr. Ownership is
// the mounting user's (CONTRACT.md): guest owners mean nothing here.
func (o *owner) fillAttr(a volume.Attr, ino uint64, out *fuse.Attr) {
	out.Ino = ino
	out.Mode = unixMode(a.Mode)
	out.Size = uint64(a.Size)
	out.Blocks = uint64(a.Blocks)
	out.Nlink = a.Nlink
	if out.Nlink == 0 {
		out.Nlink = 1
	}
	out.Atime, out.Atimensec = setTime(a.Atime)
	out.Mtime, out.Mtimensec = setTime(a.Mtime)
	out.Ctime, out.Ctimensec = setTime(a.Ctime)
	out.Blksize = 4096
	out.Owner = fuse.Owner{Uid: o.uid, Gid: o.gid}
}

// owner is the mounting user, who owns everything in the tree.
type owner struct{ uid, gid uint32 }

func (o *owner) dirAttr(out *fuse.Attr, mode uint32) {
	out.Mode = syscall.S_IFDIR | mode
	out.Nlink = 2
	out.Owner = fuse.Owner{Uid: o.uid, Gid: o.gid}
}
