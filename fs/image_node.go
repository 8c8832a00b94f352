package fs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/registryfs"
	"github.com/offvm/offvm/volume"
)

// imageNode is an image file shown as a directory. The image is opened on
// first lookup inside it, not when the library is listed.
type imageNode struct {
	fs.Inode
	tree *Tree
	path string

	mu   sync.Mutex
	im   *mount.Image
	err  error
	done bool
	vols map[int]*volCtx

	letters map[string]string // drive letter → "p3", once read

	lastUse atomic.Int64 // unix ns of the last open or lookup (idle.go)
	// lookups counts Lookups under way: one may hold the open image while
	// the kernel does not yet know its node, so no idle pass may close it.
	lookups atomic.Int32
}

var (
	_ fs.NodeLookuper  = (*imageNode)(nil)
	_ fs.NodeReaddirer = (*imageNode)(nil)
	_ fs.NodeGetattrer = (*imageNode)(nil)
)

// peek returns the image if it has been opened, without opening it.
func (n *imageNode) peek() (*mount.Image, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.im, n.err
}

func (n *imageNode) open() (*mount.Image, error) {
	n.touch()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return n.im, n.err
	}
	n.done = true
	func() {
		defer func() {
			if r := recover(); r != nil {
				n.err = fmt.Errorf("%s: opening the image failed: %v", n.path, r)
			}
		}()
		opts := mount.Options{ReadOnly: n.tree.opts.ReadOnly, HoldReader: n.tree.opts.ReadOnly, NoSecrets: n.tree.opts.NoSecrets}
		if !opts.ReadOnly && n.tree.isParent(n.path) {
			opts.ReadOnlyReason = "the parent of another image in the library"
		}
		n.tree.vmOptions(n.path, &opts)
		if n.err = library.OVAError(n.path); n.err == nil {
			n.im, n.err = mount.Open(n.path, opts)
		}
	}()
	if n.err != nil {
		slog.Warn("image failed to open", "image", n.path, "err", n.err)
	}
	n.vols = map[int]*volCtx{}
	return n.im, n.err
}

// volume returns partition num's file system context, or nil when the
// partition holds none that opened.
func (n *imageNode) volume(num int) *volCtx {
	im, err := n.open()
	if err != nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if vc, ok := n.vols[num]; ok {
		return vc
	}
	v, err := im.Volume(num)
	if err != nil || v.FS == nil {
		return nil
	}
	vc := newVolCtx(n.tree, v.FS, v.ReadOnly)
	if reg, rv, err := im.Registry(); err == nil && rv == v {
		vc.guard = reg.FileWrite
		if im.NoSecrets() {
			vc.secret = func(ino volume.Ino) bool { return im.Secret(num, ino) }
		}
	}
	n.vols[num] = vc
	return vc
}

func (n *imageNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.tree.owner.dirAttr(&out.Attr, 0o755)
	return 0
}

// children lists the names the image directory holds, opening it.
func (n *imageNode) children() []fuse.DirEntry {
	out := []fuse.DirEntry{{Name: "info.json", Mode: syscall.S_IFREG}}
	im, err := n.open()
	if err != nil {
		return out
	}
	out = append(out, fuse.DirEntry{Name: "disk", Mode: syscall.S_IFREG}, fuse.DirEntry{Name: "raw", Mode: syscall.S_IFDIR})
	for _, p := range im.Partitions() {
		if n.volume(p.Number) != nil {
			out = append(out, fuse.DirEntry{Name: "p" + strconv.Itoa(p.Number), Mode: syscall.S_IFDIR})
		}
	}
	if reg, _, err := im.Registry(); err == nil && reg != nil {
		out = append(out, fuse.DirEntry{Name: "registry", Mode: syscall.S_IFDIR})
	}
	for name := range im.LVLinks() {
		out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFLNK})
	}
	for letter := range n.drives() {
		out = append(out, fuse.DirEntry{Name: letter, Mode: syscall.S_IFLNK})
	}
	return out
}

// drives returns the drive letters whose partition has a file system.
func (n *imageNode) drives() map[string]string {
	im, err := n.open()
	if err != nil || n.tree.opts.Drives == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.letters == nil {
		n.letters = map[string]string{}
		for l, p := range n.tree.opts.Drives(im) {
			n.letters[l] = p
		}
	}
	return n.letters
}

func (n *imageNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream(n.children()), 0
}

func (n *imageNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.lookups.Add(1)
	defer n.lookups.Add(-1)
	switch {
	case name == "info.json":
		node := &infoNode{render: n.infoJSON, owner: n.tree.owner}
		node.fill(&out.Attr)
		return n.NewInode(ctx, node, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	case name == "disk":
		im, err := n.open()
		if err != nil {
			return nil, syscall.ENOENT
		}
		node := &diskNode{tree: n.tree, im: im}
		node.fill(&out.Attr)
		return n.NewInode(ctx, node, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	case name == "raw":
		im, err := n.open()
		if err != nil {
			return nil, syscall.ENOENT
		}
		n.tree.owner.dirAttr(&out.Attr, 0o555)
		return n.NewInode(ctx, &rawDir{tree: n.tree, im: im}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	case len(name) == 1 && n.drives()[name] != "":
		out.Attr.Mode = syscall.S_IFLNK | 0o777
		out.Attr.Owner = fuse.Owner{Uid: n.tree.owner.uid, Gid: n.tree.owner.gid}
		return n.NewInode(ctx, &fs.MemSymlink{Data: []byte(n.drives()[name])}, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	case strings.HasPrefix(name, "lv-"):
		im, err := n.open()
		if err != nil || im.LVLinks()[name] == "" {
			return nil, syscall.ENOENT
		}
		out.Attr.Mode = syscall.S_IFLNK | 0o777
		out.Attr.Owner = fuse.Owner{Uid: n.tree.owner.uid, Gid: n.tree.owner.gid}
		return n.NewInode(ctx, &fs.MemSymlink{Data: []byte(im.LVLinks()[name])}, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	case name == "registry":
		im, err := n.open()
		if err != nil {
			return nil, syscall.ENOENT
		}
		reg, _, err := im.Registry()
		if err != nil {
			return nil, syscall.ENOENT
		}
		n.tree.owner.dirAttr(&out.Attr, 0o755)
		node := registryfs.New(reg, registryfs.Owner{UID: n.tree.owner.uid, GID: n.tree.owner.gid})
		return n.NewInode(ctx, node, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	case strings.HasPrefix(name, "p"):
		num, err := strconv.Atoi(name[1:])
		if err != nil || strconv.Itoa(num) != name[1:] {
			return nil, syscall.ENOENT
		}
		vc := n.volume(num)
		if vc == nil {
			return nil, syscall.ENOENT
		}
		return vc.lookupRoot(ctx, &n.Inode, out)
	}
	return nil, syscall.ENOENT
}

// infoJSON renders what inspection says of the image, or its error.
func (n *imageNode) infoJSON() []byte {
	im, err := n.open()
	var v any
	if err != nil {
		inf := mount.ErrorInfo(n.path, err)
		inf.VM = n.tree.vmOf(n.path) // what the VM says stays known
		v = inf
	} else if n.tree.opts.Info != nil {
		v = n.tree.opts.Info(im)
	} else {
		v = im.Info()
	}
	n.touch() // inspection may take long: idle counts from its end
	b, jerr := json.MarshalIndent(v, "", "  ")
	if jerr != nil {
		b = []byte(fmt.Sprintf("{\"error\": %q}", jerr.Error()))
	}
	return append(b, '\n')
}
