package fs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/volume"
)

var (
	_ fs.NodeCreater   = (*vnode)(nil)
	_ fs.NodeMkdirer   = (*vnode)(nil)
	_ fs.NodeUnlinker  = (*vnode)(nil)
	_ fs.NodeRmdirer   = (*vnode)(nil)
	_ fs.NodeRenamer   = (*vnode)(nil)
	_ fs.NodeLinker    = (*vnode)(nil)
	_ fs.NodeSymlinker = (*vnode)(nil)
)

// writer returns the engine's write side, or EROFS.
func (n *vnode) writer() (volume.Writer, syscall.Errno) {
	if n.vc.w == nil {
		return nil, syscall.EROFS
	}
	return n.vc.w, 0
}

func (n *vnode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (_ *fs.Inode, _ fs.FileHandle, _ uint32, e syscall.Errno) {
	defer guard("create", &e)
	w, e := n.writer()
	if e != 0 {
		return nil, nil, 0, e
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	a, err := w.Create(n.ino, name, os.FileMode(mode&0o777))
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	n.vc.entry(a, out)
	return n.vc.node(ctx, &n.Inode, a), nil, openFlags, 0
}

func (n *vnode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (_ *fs.Inode, e syscall.Errno) {
	defer guard("mkdir", &e)
	w, e := n.writer()
	if e != 0 {
		return nil, e
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	a, err := w.Mkdir(n.ino, name, os.FileMode(mode&0o777)|os.ModeDir)
	if err != nil {
		return nil, errno(err)
	}
	n.vc.entry(a, out)
	return n.vc.node(ctx, &n.Inode, a), 0
}

func (n *vnode) Unlink(ctx context.Context, name string) (e syscall.Errno) {
	defer guard("unlink", &e)
	w, e := n.writer()
	if e != 0 {
		return e
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	if e := n.checkName(name); e != 0 {
		return e
	}
	return errno(w.Unlink(n.ino, name))
}

func (n *vnode) Rmdir(ctx context.Context, name string) (e syscall.Errno) {
	defer guard("rmdir", &e)
	w, e := n.writer()
	if e != 0 {
		return e
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	return errno(w.Rmdir(n.ino, name))
}

func (n *vnode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) (e syscall.Errno) {
	defer guard("rename", &e)
	w, e := n.writer()
	if e != 0 {
		return e
	}
	np, ok := newParent.(*vnode)
	if !ok || np.vc != n.vc {
		return syscall.EXDEV
	}
	if flags != 0 { // RENAME_EXCHANGE, RENAME_NOREPLACE: not offered
		return syscall.EINVAL
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	if e := n.checkName(name); e != 0 {
		return e
	}
	if e := np.checkName(newName); e != 0 && e != syscall.ENOENT {
		return e
	}
	return errno(w.Rename(n.ino, name, np.ino, newName))
}

func (n *vnode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (_ *fs.Inode, e syscall.Errno) {
	defer guard("link", &e)
	w, e := capability[volume.Linker](n)
	if e != 0 {
		return nil, e
	}
	t, ok := target.(*vnode)
	if !ok || t.vc != n.vc {
		return nil, syscall.EXDEV
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	a, err := w.Link(t.ino, n.ino, name)
	if err != nil {
		return nil, errno(err)
	}
	n.vc.entry(a, out)
	return n.vc.node(ctx, &n.Inode, a), 0
}

func (n *vnode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (_ *fs.Inode, e syscall.Errno) {
	defer guard("symlink", &e)
	w, e := capability[volume.Symlinker](n)
	if e != 0 {
		return nil, e
	}
	n.vc.mu.Lock()
	defer n.vc.mu.Unlock()
	a, err := w.Symlink(n.ino, name, target)
	if err != nil {
		return nil, errno(err)
	}
	n.vc.entry(a, out)
	return n.vc.node(ctx, &n.Inode, a), 0
}

// checkName asks the guard about the file a name in this directory holds.
func (n *vnode) checkName(name string) syscall.Errno {
	if n.vc.guard == nil {
		return 0
	}
	a, err := n.vc.fs.Lookup(n.ino, name)
	if err != nil {
		return errno(err)
	}
	return n.vc.check(a.Ino)
}
