package fs

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// infoNode is info.json: rendered when opened, so it always tells the
// image's (or OVA package's) current state. A read-only mount opens
// without asking (internal/noopen) and keeps pages: there, each read
// drops the kernel's copy once answered (stale), and the kernel's next
// stat renders again (fresh), so a later read gets the state of then, at
// its own size. Not at once: the kernel stats again at the end of a
// file, just after the read that dropped its copy, and a rendering then
// would put the new one's tail after the old one's head. So fresh is when
// no read came for infoQuiet, or the rendering is infoMaxAge old and the
// last read is infoQuiet/20 away (a poller is not kept on one rendering
// unless it reads more often than that).
type infoNode struct {
	fs.Inode
	render func() []byte
	owner  owner
	opened atomic.Bool  // the kernel sends OPEN: reads are direct
	stale  atomic.Bool  // the kernel dropped its copy since the rendering
	read   atomic.Int64 // when the last read was answered (UnixNano)

	mu   sync.Mutex
	data []byte
	at   time.Time // of data
}

const (
	infoQuiet  = 200 * time.Millisecond
	infoMaxAge = time.Second
)

var (
	_ fs.NodeOpener    = (*infoNode)(nil)
	_ fs.NodeReader    = (*infoNode)(nil)
	_ fs.NodeGetattrer = (*infoNode)(nil)
)

func (n *infoNode) content(refresh bool) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.data == nil || refresh {
		n.data, n.at = n.render(), time.Now()
	}
	return n.data
}

// fresh says whether a rendering now gives no reader a torn file (see
// infoNode).
func (n *infoNode) fresh() bool {
	sinceRead := time.Since(time.Unix(0, n.read.Load()))
	n.mu.Lock()
	age := time.Since(n.at)
	n.mu.Unlock()
	return sinceRead >= infoQuiet || age >= infoMaxAge && sinceRead >= infoQuiet/20
}

func (n *infoNode) fill(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(len(n.content(false)))
	out.Nlink = 1
	out.Owner = fuse.Owner{Uid: n.owner.uid, Gid: n.owner.gid}
}

func (n *infoNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.stale.Load() && n.fresh() {
		n.stale.Store(false)
		n.content(true)
	}
	n.fill(&out.Attr)
	return 0
}

func (n *infoNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EACCES
	}
	n.opened.Store(true)
	n.content(true)
	// direct I/O: the content may change size between opens.
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (n *infoNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data := n.content(false)
	if !n.opened.Load() {
		n.read.Store(time.Now().UnixNano())
		n.stale.Store(true)
		go n.NotifyContent(0, 0) // not from inside the request: it can deadlock
	}
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(data)))
	return fuse.ReadResultData(data[off:end]), 0
}
