package fs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/library"
)

// libraryNode mirrors one directory of the library.
type libraryNode struct {
	fs.Inode
	tree *Tree
	path string
}

var (
	_ fs.NodeLookuper  = (*libraryNode)(nil)
	_ fs.NodeReaddirer = (*libraryNode)(nil)
	_ fs.NodeGetattrer = (*libraryNode)(nil)
)

// Root returns the root node of the tree. A library that is one image file
// shows that image at the root.
func (t *Tree) Root() fs.InodeEmbedder {
	if st, err := os.Stat(t.opts.Library); err == nil && !st.IsDir() {
		return &singleNode{libraryNode{tree: t, path: filepath.Dir(t.opts.Library)}, filepath.Base(t.opts.Library)}
	}
	return &libraryNode{tree: t, path: t.opts.Library}
}

func (n *libraryNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.tree.owner.dirAttr(&out.Attr, 0o755)
	if st, err := os.Stat(n.path); err == nil {
		out.SetTimes(nil, ptr(st.ModTime()), ptr(st.ModTime()))
	}
	return 0
}

func (n *libraryNode) list() ([]library.Entry, syscall.Errno) {
	ents, err := library.List(n.path)
	if err != nil {
		return nil, errno(err)
	}
	return ents, 0
}

func (n *libraryNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents, e := n.list()
	if e != 0 {
		return nil, e
	}
	out := make([]fuse.DirEntry, 0, len(ents))
	for _, en := range ents {
		out = append(out, fuse.DirEntry{Name: en.Name, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(out), 0
}

func (n *libraryNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ents, e := n.list()
	if e != 0 {
		return nil, e
	}
	for _, en := range ents {
		if en.Name != name {
			continue
		}
		out.SetEntryTimeout(libraryTimeout)
		out.SetAttrTimeout(libraryTimeout)
		n.tree.owner.dirAttr(&out.Attr, 0o755)
		if en.IsDir && en.Format == "ova" {
			return n.NewInode(ctx, &ovaNode{libraryNode{tree: n.tree, path: en.Path}}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
		if en.IsDir {
			return n.NewInode(ctx, &libraryNode{tree: n.tree, path: en.Path}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
		img := n.tree.imageFor(en.Path)
		return n.NewInode(ctx, img, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	}
	return nil, syscall.ENOENT
}

// singleNode is the root when the library is one image file.
type singleNode struct {
	libraryNode
	name string
}

func (n *singleNode) list() ([]library.Entry, syscall.Errno) {
	ents, e := n.libraryNode.list()
	for _, en := range ents {
		if en.Name == n.name {
			return []library.Entry{en}, e
		}
	}
	return nil, e
}

func (n *singleNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents, e := n.list()
	if e != 0 {
		return nil, e
	}
	var out []fuse.DirEntry
	for _, en := range ents {
		out = append(out, fuse.DirEntry{Name: en.Name, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(out), 0
}

func (n *singleNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name != n.name {
		return nil, syscall.ENOENT
	}
	return n.libraryNode.Lookup(ctx, name, out)
}
