package fs

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// infoNode is info.json: rendered when opened, so it always tells the
// image's (or OVA package's) current state.
type infoNode struct {
	fs.Inode
	render func() []byte
	owner  owner

	mu   sync.Mutex
	data []byte
}

var (
	_ fs.NodeOpener    = (*infoNode)(nil)
	_ fs.NodeReader    = (*infoNode)(nil)
	_ fs.NodeGetattrer = (*infoNode)(nil)
)

func (n *infoNode) content(refresh bool) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.data == nil || refresh {
		n.data = n.render()
	}
	return n.data
}

func (n *infoNode) fill(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(len(n.content(false)))
	out.Nlink = 1
	out.Owner = fuse.Owner{Uid: n.owner.uid, Gid: n.owner.gid}
}

func (n *infoNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	return 0
}

func (n *infoNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EACCES
	}
	n.content(true)
	// direct I/O: the content may change size between opens.
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (n *infoNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data := n.content(false)
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(data)))
	return fuse.ReadResultData(data[off:end]), 0
}
