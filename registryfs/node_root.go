package registryfs

import (
	"context"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/registry/winreg"
)

// rootNode is registry/ (HKLM, HKU), or one of them (prefix set).
type rootNode struct {
	fs.Inode
	c      *ctx
	prefix string // "" for registry/, "HKLM" or "HKU"
}

var (
	_ fs.NodeLookuper  = (*rootNode)(nil)
	_ fs.NodeReaddirer = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*rootNode)(nil)
)

func (n *rootNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.c.dirAttr(&out.Attr, nil, time.Time{})
	return 0
}

// child is one name of a root directory: a hive, an HK root, or a link
// from a user name to a SID.
type child struct {
	name   string
	hive   *winreg.Hive
	link   string
	prefix string
}

func (n *rootNode) children() []child {
	if n.prefix == "" {
		return []child{{name: "HKLM", prefix: "HKLM"}, {name: "HKU", prefix: "HKU"}}
	}
	var out []child
	for _, h := range n.c.reg.All() {
		if p, name, ok := strings.Cut(h.Root, "/"); ok && p == n.prefix {
			out = append(out, child{name: name, hive: h})
		}
	}
	if n.prefix == "HKU" {
		for name, sid := range n.c.reg.Aliases() {
			out = append(out, child{name: name, link: sid})
		}
	}
	return out
}

func (n *rootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var ents []fuse.DirEntry
	for _, c := range n.children() {
		mode := uint32(syscall.S_IFDIR)
		if c.link != "" {
			mode = syscall.S_IFLNK
		}
		ents = append(ents, fuse.DirEntry{Name: c.name, Mode: mode})
	}
	return fs.NewListDirStream(ents), 0
}

func (n *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	for _, c := range n.children() {
		if !strings.EqualFold(c.name, name) {
			continue
		}
		entry(out)
		switch {
		case c.link != "":
			l := &fs.MemSymlink{Data: []byte(c.link)}
			out.Attr.Mode = syscall.S_IFLNK | 0o777
			return n.NewInode(ctx, l, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
		case c.hive != nil:
			hv, err := c.hive.Load(n.c.reg.FS)
			if err != nil {
				return nil, errno(err)
			}
			kn := &keyNode{c: n.c, hive: c.hive, key: hv.Root(), isHiveRoot: true}
			n.c.dirAttr(&out.Attr, c.hive, hv.Root().LastWritten())
			out.Attr.Ino = n.c.hiveIno(c.hive, hv.Root().ID())
			return n.NewInode(ctx, kn, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: out.Attr.Ino}), 0
		default:
			n.c.dirAttr(&out.Attr, nil, time.Time{})
			out.Attr.Ino = n.c.topIno(map[string]uint64{"HKLM": 2, "HKU": 3}[c.prefix])
			return n.NewInode(ctx, &rootNode{c: n.c, prefix: c.prefix}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: out.Attr.Ino}), 0
		}
	}
	return nil, syscall.ENOENT
}
