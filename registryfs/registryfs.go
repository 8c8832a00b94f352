// Package registryfs shows a Windows guest's registry as files (CONTRACT.md,
// "The registry as files"): keys are directories, values are files whose
// content is rendered sysfs-style, the type is the xattr user.reg.type.
// Every change goes to the in-memory hive (package winreg), which is
// written back into the hive file when the image is committed.
package registryfs

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
)

// timeout: the registry changes only through this view, which tells the
// kernel what it changes (new and deleted names go through the kernel's
// own dentry updates; changed values drop their pages), so entries,
// attributes and pages can stay in the kernel: a second pass of a scanner
// is served from its caches. Keys and values have stable inode numbers,
// so the several spellings of a case-insensitive name share one inode.
var timeout = time.Minute

// Inode numbers: bit 62 marks the registry (fs gives volumes
// id<<40|ino with small ids, go-fuse's automatic numbers start at 1<<63);
// then a number per hive (or per registry for its top directories) and
// the key's or value's cell offset / 8 in the low 29 bits. Keys and values
// made through the view have no cell and get automatic numbers.
const (
	inoRegistry = 1 << 62
	inoIDShift  = 29
)

var nextInoID atomic.Uint64

func (c *ctx) hiveIno(h *winreg.Hive, cell uint32) uint64 {
	if cell == 0xFFFFFFFF {
		return 0
	}
	c.mu.Lock()
	id, ok := c.ids[h]
	if !ok {
		id = nextInoID.Add(1)
		c.ids[h] = id
	}
	c.mu.Unlock()
	return inoRegistry | id<<inoIDShift | uint64(cell>>3)
}

// topIno numbers registry/, HKLM, HKU and the CurrentControlSet link
// (cells are at least 0x20, so 1..3 never meet a key).
func (c *ctx) topIno(i uint64) uint64 { return inoRegistry | c.id<<inoIDShift | i }

// Owner is the mounting user, who owns every node.
type Owner struct{ UID, GID uint32 }

// ctx is what every node of one image's registry shares.
type ctx struct {
	reg   *winreg.Registry
	owner Owner
	id    uint64 // inode number space of the top directories

	mu  sync.Mutex
	ids map[*winreg.Hive]uint64 // inode number space of each hive
}

// New returns the registry/ directory node of an image.
func New(reg *winreg.Registry, owner Owner) fs.InodeEmbedder {
	return &rootNode{c: &ctx{reg: reg, owner: owner, id: nextInoID.Add(1), ids: map[*winreg.Hive]uint64{}}}
}

// writable says whether hive h (nil: the top directories) can change: the
// volume is writable and the hive is sound (hive.ReadOnly).
func (c *ctx) writable(h *winreg.Hive) bool {
	if ok, _ := c.reg.Writable(); !ok {
		return false
	}
	if h == nil {
		return true
	}
	hv := h.Loaded()
	return hv == nil || hv.ReadOnly() == nil
}

func (c *ctx) dirAttr(out *fuse.Attr, h *winreg.Hive, mtime time.Time) {
	out.Mode = syscall.S_IFDIR | 0o755
	if !c.writable(h) {
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
