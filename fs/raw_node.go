package fs

import (
	"context"
	"strconv"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/mount"
)

// rawDir is an image's raw/ directory: p1, p2, ... as read-only files of
// each partition's bytes (decrypted for an unlocked BitLocker volume), so
// that ntfsinfo, fls and the like can run on a volume.
type rawDir struct {
	fs.Inode
	tree *Tree
	im   *mount.Image
}

var (
	_ fs.NodeLookuper  = (*rawDir)(nil)
	_ fs.NodeReaddirer = (*rawDir)(nil)
	_ fs.NodeGetattrer = (*rawDir)(nil)
)

func (n *rawDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.tree.owner.dirAttr(&out.Attr, 0o555)
	return 0
}

func (n *rawDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var out []fuse.DirEntry
	for _, p := range n.im.Partitions() {
		out = append(out, fuse.DirEntry{Name: "p" + strconv.Itoa(p.Number), Mode: syscall.S_IFREG})
	}
	return fs.NewListDirStream(out), 0
}

func (n *rawDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	num, err := strconv.Atoi(strings.TrimPrefix(name, "p"))
	if !strings.HasPrefix(name, "p") || err != nil || "p"+strconv.Itoa(num) != name {
		return nil, syscall.ENOENT
	}
	raw, err := n.im.Raw(num)
	if err != nil {
		return nil, syscall.ENOENT
	}
	node := &rawNode{tree: n.tree, raw: raw}
	node.fill(&out.Attr)
	return n.NewInode(ctx, node, fs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// rawNode is one partition's bytes. It is not kept in the page cache:
// writes through pN/ change what it reads.
type rawNode struct {
	fs.Inode
	tree *Tree
	raw  mount.Raw
}

var (
	_ fs.NodeOpener    = (*rawNode)(nil)
	_ fs.NodeReader    = (*rawNode)(nil)
	_ fs.NodeGetattrer = (*rawNode)(nil)
)

func (n *rawNode) fill(out *fuse.Attr) { n.tree.owner.readOnlyFile(out, n.raw.Size()) }

// readOnlyFile fills the attributes of a read-only file of size bytes
// (disk, raw/pN).
func (o *owner) readOnlyFile(out *fuse.Attr, size int64) {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(size)
	out.Blocks = (out.Size + 511) / 512
	out.Nlink = 1
	out.Owner = fuse.Owner{Uid: o.uid, Gid: o.gid}
}

// readBytes serves a FUSE read of r, size bytes long.
func readBytes(r interface {
	ReadAt([]byte, int64) (int, error)
}, size int64, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rem := size - off; int64(len(dest)) > rem {
		dest = dest[:rem]
	}
	k, err := r.ReadAt(dest, off)
	if err != nil && k < len(dest) {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *rawNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	return 0
}

func (n *rawNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, 0, 0
}

func (n *rawNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (res fuse.ReadResult, e syscall.Errno) {
	defer guard("raw read", &e)
	return readBytes(n.raw, n.raw.Size(), dest, off)
}
