package fs

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/volume"
)

// volCtx is one mounted file system: its engine, whether it may be
// written, and the id that makes its inode numbers unique in the tree.
type volCtx struct {
	tree *Tree
	fs   volume.FS
	w    volume.Writer // nil when read-only
	ro   string        // why it is read-only
	id   uint64

	// guard, when set, is asked before a file is changed in place, renamed
	// or removed: the registry view refuses (EBUSY) changes to a hive file
	// it holds unsaved edits of.
	guard func(volume.Ino) error

	// secret, when set (--no-secrets), names the files no one may open:
	// SAM, SECURITY and their logs (EACCES).
	secret func(volume.Ino) bool

	// mu orders metadata changes against lookups (engines lock too; this
	// keeps rename and unlink atomic as seen through FUSE).
	mu sync.RWMutex
}

// inoBits is how many low bits of a FUSE inode number the engine's own
// number gets; the volume id takes the bits above.
const inoBits = 40

func newVolCtx(t *Tree, f volume.FS, readOnly string) *volCtx {
	vc := &volCtx{tree: t, fs: f, ro: readOnly, id: t.volIDs.Add(1)}
	if w, ok := f.(volume.Writer); ok && readOnly == "" {
		vc.w = w
	}
	if vc.w == nil && vc.ro == "" {
		vc.ro = f.Type() + " is read-only in this version"
	}
	return vc
}

func (vc *volCtx) fuseIno(ino volume.Ino) uint64 { return vc.id<<inoBits | uint64(ino) }

// node returns the go-fuse inode for an engine inode, creating it under
// parent the first time (go-fuse dedups by inode number: hard links and
// case variants of a name share one inode).
func (vc *volCtx) node(ctx context.Context, parent *fs.Inode, a volume.Attr) *fs.Inode {
	n := &vnode{vc: vc, ino: a.Ino}
	return parent.NewInode(ctx, n, fs.StableAttr{Mode: unixMode(a.Mode) & syscall.S_IFMT, Ino: vc.fuseIno(a.Ino)})
}

func (vc *volCtx) entry(a volume.Attr, out *fuse.EntryOut) {
	vc.tree.owner.fillAttr(a, vc.fuseIno(a.Ino), &out.Attr)
	out.SetEntryTimeout(volumeTimeout)
	out.SetAttrTimeout(volumeTimeout)
}

func (vc *volCtx) lookupRoot(ctx context.Context, parent *fs.Inode, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := vc.fs.GetAttr(vc.fs.Root())
	if err != nil {
		return nil, errno(err)
	}
	vc.entry(a, out)
	return vc.node(ctx, parent, a), 0
}

// vnode is a file, directory or symlink inside a file system.
type vnode struct {
	fs.Inode
	vc  *volCtx
	ino volume.Ino
}

var (
	_ fs.NodeLookuper   = (*vnode)(nil)
	_ fs.NodeReaddirer  = (*vnode)(nil)
	_ fs.NodeGetattrer  = (*vnode)(nil)
	_ fs.NodeReadlinker = (*vnode)(nil)
	_ fs.NodeStatfser   = (*vnode)(nil)
)

func (n *vnode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) (e syscall.Errno) {
	defer guard("getattr", &e)
	a, err := n.vc.fs.GetAttr(n.ino)
	if err != nil {
		return errno(err)
	}
	n.vc.tree.owner.fillAttr(a, n.vc.fuseIno(a.Ino), &out.Attr)
	out.SetTimeout(volumeTimeout)
	return 0
}

func (n *vnode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fs.Inode, e syscall.Errno) {
	defer guard("lookup", &e)
	n.vc.mu.RLock()
	defer n.vc.mu.RUnlock()
	a, err := n.vc.lookup(n.ino, name)
	if err != nil {
		return nil, errno(err)
	}
	n.vc.entry(a, out)
	return n.vc.node(ctx, &n.Inode, a), 0
}

// lookup is the engine's LookupAhead where it has one: the kernel's
// lookups mostly come in a directory's order (rsync, cp -a and find stat
// its names one after the other, none of them listing it through
// readdirplus), so the engine reads the names after name with it.
func (vc *volCtx) lookup(dir volume.Ino, name string) (volume.Attr, error) {
	if al, ok := vc.fs.(volume.AheadLooker); ok {
		return al.LookupAhead(dir, name)
	}
	return vc.fs.Lookup(dir, name)
}

func (n *vnode) Readdir(ctx context.Context) (_ fs.DirStream, e syscall.Errno) {
	defer guard("readdir", &e)
	ents, err := n.vc.fs.ReadDir(n.ino)
	if err != nil {
		return nil, errno(err)
	}
	return newDirStream(n.vc, ents), 0
}

func (n *vnode) Readlink(ctx context.Context) (_ []byte, e syscall.Errno) {
	defer guard("readlink", &e)
	t, err := n.vc.fs.Readlink(n.ino)
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

func (n *vnode) Statfs(ctx context.Context, out *fuse.StatfsOut) (e syscall.Errno) {
	defer guard("statfs", &e)
	s, err := n.vc.fs.StatFS()
	if err != nil {
		return errno(err)
	}
	out.Bsize, out.Frsize = s.BlockSize, s.BlockSize
	out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.BlocksFree, s.BlocksFree
	out.Files, out.Ffree = s.Files, s.FilesFree
	out.NameLen = s.NameMaxLen
	return 0
}

// check asks the guard whether ino may change.
func (vc *volCtx) check(ino volume.Ino) syscall.Errno {
	if vc.guard == nil {
		return 0
	}
	return errno(vc.guard(ino))
}
