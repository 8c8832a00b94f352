package fs

import (
	"context"
	"encoding/json"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/vmconfig"
)

// ovaNode is an OVA package shown as a folder: its disks (as images, by
// libraryNode) and an info.json with what the OVF says of the VM.
type ovaNode struct {
	libraryNode
}

var (
	_ fs.NodeLookuper  = (*ovaNode)(nil)
	_ fs.NodeReaddirer = (*ovaNode)(nil)
)

// ovaInfo is the package's info.json.
type ovaInfo struct {
	Package        string       `json:"package"`
	Path           string       `json:"path"`
	Descriptor     string       `json:"descriptor"`
	Writable       bool         `json:"writable"`
	ReadOnlyReason string       `json:"read_only_reason"`
	VM             *vmconfig.VM `json:"vm"`
	Members        []ovaMember  `json:"members"`
	Error          *string      `json:"error,omitempty"`
}

type ovaMember struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

func (n *ovaNode) infoJSON() []byte {
	inf := ovaInfo{Package: filepath.Base(n.path), Path: n.path, ReadOnlyReason: library.OVAReason, Members: []ovaMember{}}
	if o, err := library.OVAIndex(n.path); err != nil {
		msg := err.Error()
		inf.Error = &msg
	} else {
		inf.Descriptor, inf.VM = o.Descriptor, o.VM
		for _, m := range o.Members {
			inf.Members = append(inf.Members, ovaMember{m.Name, m.Size})
		}
	}
	b, _ := json.MarshalIndent(inf, "", "  ")
	return append(b, '\n')
}

func (n *ovaNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents, e := n.list()
	if e != 0 {
		return nil, e
	}
	out := []fuse.DirEntry{{Name: "info.json", Mode: syscall.S_IFREG}}
	for _, en := range ents {
		out = append(out, fuse.DirEntry{Name: en.Name, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(out), 0
}

func (n *ovaNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == "info.json" {
		node := &infoNode{render: n.infoJSON, owner: n.tree.owner}
		node.fill(&out.Attr)
		return n.NewInode(ctx, node, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	return n.libraryNode.Lookup(ctx, name, out)
}
