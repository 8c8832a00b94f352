package fs

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/volume"
)

var (
	_ fs.NodeOpener    = (*vnode)(nil)
	_ fs.NodeReader    = (*vnode)(nil)
	_ fs.NodeWriter    = (*vnode)(nil)
	_ fs.NodeSetattrer = (*vnode)(nil)
	_ fs.NodeFsyncer   = (*vnode)(nil)
	_ fs.NodeFlusher   = (*vnode)(nil)
)

const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_APPEND

func (n *vnode) Open(ctx context.Context, flags uint32) (_ fs.FileHandle, _ uint32, e syscall.Errno) {
	defer guard("open", &e)
	if n.refused() {
		return nil, 0, syscall.EACCES
	}
	if flags&writeFlags != 0 {
		if n.vc.w == nil {
			return nil, 0, syscall.EROFS
		}
		if e := n.vc.check(n.ino); e != 0 {
			return nil, 0, e
		}
		if flags&syscall.O_TRUNC != 0 {
			if err := n.vc.w.Truncate(n.ino, 0); err != nil {
				return nil, 0, errno(err)
			}
		}
	}
	return nil, openFlags, 0
}

// openFlags: we are the only writer of this file system, so the kernel
// may keep what it cached across opens; and no open needs a FLUSH at
// close (writes reach the engine when write(2) returns, there is no
// writeback cache and no lock to drop): one or two round trips less per
// file for scanners, rsync and `: > file` (bash closes a dup as well).
const openFlags = uint32(fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH)

// refused: a secret file under --no-secrets. Checked at open and again
// at read: a read-only mount opens without asking (internal/noopen).
func (n *vnode) refused() bool { return n.vc.secret != nil && n.vc.secret(n.ino) }

func (n *vnode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (_ fuse.ReadResult, e syscall.Errno) {
	defer guard("read", &e)
	if n.refused() {
		return nil, syscall.EACCES
	}
	k, err := n.vc.fs.ReadAt(n.ino, dest, off)
	if err != nil && errno(err) != 0 {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *vnode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (_ uint32, e syscall.Errno) {
	defer guard("write", &e)
	if n.vc.w == nil {
		return 0, syscall.EROFS
	}
	k, err := n.vc.w.WriteAt(n.ino, data, off)
	return uint32(k), errno(err)
}

func (n *vnode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) (e syscall.Errno) {
	defer guard("setattr", &e)
	if in.Valid&(fuse.FATTR_SIZE|fuse.FATTR_ATIME|fuse.FATTR_MTIME|fuse.FATTR_ATIME_NOW|fuse.FATTR_MTIME_NOW) != 0 {
		if n.vc.w == nil {
			return syscall.EROFS
		}
	}
	if sz, ok := in.GetSize(); ok {
		if e := n.vc.check(n.ino); e != 0 {
			return e
		}
		if err := n.vc.w.Truncate(n.ino, int64(sz)); err != nil {
			return errno(err)
		}
	}
	if at, mt := setattrTimes(in); at != nil || mt != nil {
		t, e := capability[volume.Timer](n)
		if e != 0 {
			return e
		}
		if err := t.SetTimes(n.ino, at, mt); err != nil {
			return errno(err)
		}
	}
	if e := n.setModeOwner(in); e != 0 {
		return e
	}
	return n.Getattr(ctx, fh, out)
}

// setModeOwner applies chmod and chown where the file system keeps them
// (volume.ModeWriter: ext); on NTFS and FAT they mean nothing and are
// accepted and ignored, as ntfs-3g does without a user mapping.
func (n *vnode) setModeOwner(in *fuse.SetAttrIn) syscall.Errno {
	mw, ok := n.vc.w.(volume.ModeWriter)
	if !ok {
		return 0
	}
	if m, ok := in.GetMode(); ok {
		if err := mw.SetMode(n.ino, fileMode(m)); err != nil {
			return errno(err)
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		u, g := int64(-1), int64(-1)
		if uok {
			u = int64(uid)
		}
		if gok {
			g = int64(gid)
		}
		if err := mw.SetOwner(n.ino, u, g); err != nil {
			return errno(err)
		}
	}
	return 0
}

func setattrTimes(in *fuse.SetAttrIn) (at, mt *time.Time) {
	now := time.Now()
	if t, ok := in.GetATime(); ok {
		at = &t
	} else if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
		at = &now
	}
	if t, ok := in.GetMTime(); ok {
		mt = &t
	} else if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
		mt = &now
	}
	return at, mt
}

func (n *vnode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) (e syscall.Errno) {
	defer guard("fsync", &e)
	// Nothing reaches the image before unmount; fsync makes the engine's
	// state complete in the overlay.
	if n.vc.w == nil {
		return 0
	}
	return errno(n.vc.w.Sync())
}

func (n *vnode) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

// fileMode turns st_mode permission bits (with setuid, setgid, sticky)
// into an os.FileMode.
func fileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&syscall.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}
