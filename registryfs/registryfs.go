// Package registryfs shows a Windows guest's registry as files (CONTRACT.md,
// "The registry as files"): keys are directories, values are files whose
// content is rendered sysfs-style, the type is the xattr user.reg.type.
// Every change goes to the in-memory hive (package winreg), which is
// written back into the hive file when the image is committed.
package registryfs

import (
	"errors"
	"log/slog"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/hive"
	"github.com/offvm/offvm/winreg"
)

// timeout: the registry changes only through this view, but one key may be
// reached under several spellings (case-insensitive), so keep it short.
var timeout = time.Second

// Owner is the mounting user, who owns every node.
type Owner struct{ UID, GID uint32 }

// ctx is what every node of one image's registry shares.
type ctx struct {
	reg   *winreg.Registry
	owner Owner
}

// New returns the registry/ directory node of an image.
func New(reg *winreg.Registry, owner Owner) fs.InodeEmbedder {
	return &rootNode{c: &ctx{reg: reg, owner: owner}}
}

func (c *ctx) dirAttr(out *fuse.Attr, mtime time.Time) {
	out.Mode = syscall.S_IFDIR | 0o755
	if ok, _ := c.reg.Writable(); !ok {
		out.Mode = syscall.S_IFDIR | 0o555
	}
	out.Nlink = 2
	out.Owner = fuse.Owner{Uid: c.owner.UID, Gid: c.owner.GID}
	if !mtime.IsZero() {
		out.SetTimes(&mtime, &mtime, &mtime)
	}
}

// errno maps hive and engine errors to what the kernel gets.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, hive.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, hive.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, hive.ErrInvalid):
		return syscall.EINVAL
	}
	slog.Warn("registry I/O error", "err", err)
	return syscall.EIO
}

func entry(out *fuse.EntryOut) {
	out.SetEntryTimeout(timeout)
	out.SetAttrTimeout(timeout)
}

// guard turns a panic in a request into EIO, as the volume nodes do.
func guard(e *syscall.Errno) {
	if r := recover(); r != nil {
		slog.Error("panic in registry request", "panic", r)
		*e = syscall.EIO
	}
}
