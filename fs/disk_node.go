package fs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/mount"
)

// diskNode is the whole virtual disk as a raw, read-only file: what qemu
// would show the guest, whatever the container.
type diskNode struct {
	fs.Inode
	tree *Tree
	im   *mount.Image
}

var (
	_ fs.NodeOpener    = (*diskNode)(nil)
	_ fs.NodeReader    = (*diskNode)(nil)
	_ fs.NodeGetattrer = (*diskNode)(nil)
)

func (n *diskNode) fill(out *fuse.Attr) { n.tree.owner.readOnlyFile(out, n.im.Disk().Size()) }

func (n *diskNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	return 0
}

func (n *diskNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	if n.im.NoSecrets() { // the raw disk holds SAM and SECURITY too
		return nil, 0, syscall.EACCES
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *diskNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (res fuse.ReadResult, e syscall.Errno) {
	defer guard("disk read", &e)
	if n.im.NoSecrets() { // again: a read-only mount opens without asking (internal/noopen)
		return nil, syscall.EACCES
	}
	d := n.im.Disk()
	return readBytes(d, d.Size(), dest, off)
}
