package registryfs

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
)

// keyNode is a registry key: subkeys are directories, values are files.
type keyNode struct {
	fs.Inode
	c          *ctx
	hive       *winreg.Hive
	key        *hive.Key
	isHiveRoot bool
}

var (
	_ fs.NodeLookuper       = (*keyNode)(nil)
	_ fs.NodeReaddirer      = (*keyNode)(nil)
	_ fs.NodeOpendirHandler = (*keyNode)(nil)
	_ fs.NodeGetattrer      = (*keyNode)(nil)
	_ fs.NodeMkdirer        = (*keyNode)(nil)
	_ fs.NodeRmdirer        = (*keyNode)(nil)
	_ fs.NodeCreater        = (*keyNode)(nil)
	_ fs.NodeUnlinker       = (*keyNode)(nil)
	_ fs.NodeRenamer        = (*keyNode)(nil)
)

func (n *keyNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.c.dirAttr(&out.Attr, n.hive, n.key.LastWritten())
	return 0
}

// currentControlSet is the name of the link HKLM/SYSTEM shows to the
// control set Windows boots with (Select\Current).
const currentControlSet = "CurrentControlSet"

func (n *keyNode) cclTarget() string {
	if !n.isHiveRoot || n.hive.Root != "HKLM/SYSTEM" {
		return ""
	}
	sel, err := n.key.Subkey("Select")
	if err != nil {
		return ""
	}
	v, err := sel.Value("Current")
	if err != nil {
		return ""
	}
	d, err := v.Data()
	if err != nil || len(d) != 4 {
		return ""
	}
	return fmt.Sprintf("ControlSet%03d", uint32(d[0])|uint32(d[1])<<8|uint32(d[2])<<16|uint32(d[3])<<24)
}

// OpendirHandle lets the kernel keep the key's listing (FOPEN_CACHE_DIR):
// it drops it itself when an entry is made or removed through it, the
// only way a key's list changes. The key is listed at the first READDIR,
// not here: the kernel stamps its cache with the directory's version when
// it starts reading, so a listing made at open, before a mkdir that ends
// before that first read, would be kept as current (lazyListing).
func (n *keyNode) OpendirHandle(ctx context.Context, flags uint32) (_ fs.FileHandle, _ uint32, e syscall.Errno) {
	return &lazyListing{n: n}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// lazyListing is an open key: listed when first read (see OpendirHandle),
// then served by position.
type lazyListing struct {
	n      *keyNode
	ents   []fuse.DirEntry
	listed bool
	idx    int
}

var (
	_ fs.FileReaddirenter = (*lazyListing)(nil)
	_ fs.FileSeekdirer    = (*lazyListing)(nil)
)

// list lists the key once; go-fuse calls the handle under its lock.
func (d *lazyListing) list() (e syscall.Errno) {
	defer guard(&e)
	if !d.listed {
		ents, e := d.n.entries()
		if e != 0 {
			return e
		}
		d.ents, d.listed = ents, true
	}
	return 0
}

func (d *lazyListing) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if e := d.list(); e != 0 || d.idx >= len(d.ents) {
		return nil, e
	}
	ent := d.ents[d.idx]
	d.idx++
	ent.Off = uint64(d.idx)
	return &ent, 0
}

// Seekdir moves to a position; one past this listing's end reads as its
// end. The kernel asks for such positions: when the key's cached listing
// is dropped half-way (a subkey made or removed meanwhile), it goes on
// from where its reader was in the old listing, through this handle, whose
// listing may be shorter (go-fuse's list stream answers EINVAL there, and
// readdir failed with it).
func (d *lazyListing) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if e := d.list(); e != 0 {
		return e
	}
	d.idx = int(min(off, uint64(len(d.ents))))
	return 0
}

func (n *keyNode) Readdir(ctx context.Context) (_ fs.DirStream, e syscall.Errno) {
	defer guard(&e)
	ents, e := n.entries()
	if e != 0 {
		return nil, e
	}
	return fs.NewListDirStream(ents), 0
}

// entries lists the key: the CurrentControlSet link, subkeys, values,
// with the inode numbers Lookup gives them.
func (n *keyNode) entries() ([]fuse.DirEntry, syscall.Errno) {
	subs, err := n.key.Subkeys()
	if err != nil {
		return nil, errno(err)
	}
	vals, err := n.key.Values()
	if err != nil {
		return nil, errno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(subs)+len(vals)+1)
	if t := n.cclTarget(); t != "" {
		ents = append(ents, fuse.DirEntry{Name: currentControlSet, Mode: syscall.S_IFLNK, Ino: n.c.hiveIno(n.hive, cclCell)})
	}
	keyNames := make(map[string]bool, len(subs))
	for _, s := range subs {
		ents = append(ents, fuse.DirEntry{Name: EncodeName(s.Name(), false), Mode: syscall.S_IFDIR, Ino: n.c.hiveIno(n.hive, s.ID())})
		keyNames[strings.ToLower(s.Name())] = true
	}
	for _, v := range vals {
		name := EncodeName(v.Name(), true)
		if keyNames[strings.ToLower(v.Name())] {
			name = EncodeShadowed(v.Name())
		}
		ents = append(ents, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: n.c.hiveIno(n.hive, v.ID())})
	}
	return ents, 0
}

// cclCell numbers the CurrentControlSet link: no cell lies at offset 8
// (the first hbin's header is 32 bytes).
const cclCell = 8

// Lookup finds a subkey first, then a value: a key and a value of the
// same name cannot both be files, and keys are what paths walk through.
func (n *keyNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fs.Inode, e syscall.Errno) {
	defer guard(&e)
	entry(out)
	if name == currentControlSet {
		if t := n.cclTarget(); t != "" {
			out.Attr.Mode = syscall.S_IFLNK | 0o777
			return n.NewInode(ctx, &fs.MemSymlink{Data: []byte(t)}, fs.StableAttr{Mode: syscall.S_IFLNK, Ino: n.c.hiveIno(n.hive, cclCell)}), 0
		}
	}
	// A non-canonical spelling (%30 for "0") names the value that a key
	// of the same name shadows.
	if Canonical(name, false) && n.key.HasSubkeys() {
		if k, err := n.key.Subkey(DecodeName(name, false)); err == nil {
			n.c.dirAttr(&out.Attr, n.hive, k.LastWritten())
			return n.keyInode(ctx, k, &out.Attr), 0
		}
	}
	v, err := n.key.Value(DecodeName(name, true))
	if err != nil {
		return nil, syscall.ENOENT
	}
	vn := &valueNode{c: n.c, hive: n.hive, key: n.key, name: v.Name()}
	if e := vn.fill(&out.Attr); e != 0 {
		return nil, e
	}
	ino := n.c.hiveIno(n.hive, v.ID())
	out.Attr.Ino = ino
	return n.NewInode(ctx, vn, fs.StableAttr{Mode: syscall.S_IFREG, Ino: ino}), 0
}

// keyInode is the inode of subkey k, numbered by its cell so that every
// spelling of its name and every later lookup reach the same inode.
func (n *keyNode) keyInode(ctx context.Context, k *hive.Key, out *fuse.Attr) *fs.Inode {
	ino := n.c.hiveIno(n.hive, k.ID())
	out.Ino = ino
	return n.NewInode(ctx, &keyNode{c: n.c, hive: n.hive, key: k}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino})
}

// editable checks that this key's hive may change now.
func (n *keyNode) editable() syscall.Errno {
	_, err := n.c.reg.Editable(n.hive)
	return errno(err)
}

func (n *keyNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (_ *fs.Inode, e syscall.Errno) {
	defer guard(&e)
	if e := n.editable(); e != 0 {
		return nil, e
	}
	if _, err := n.key.Value(DecodeName(name, true)); err == nil {
		return nil, syscall.EEXIST
	}
	k, err := n.key.CreateSubkey(DecodeName(name, false))
	if err != nil {
		return nil, errno(err)
	}
	entry(out)
	n.c.dirAttr(&out.Attr, n.hive, k.LastWritten())
	return n.NewInode(ctx, &keyNode{c: n.c, hive: n.hive, key: k}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Rmdir deletes an empty key; `rm -r` empties it first, as on any file
// system.
func (n *keyNode) Rmdir(ctx context.Context, name string) (e syscall.Errno) {
	defer guard(&e)
	if e := n.editable(); e != 0 {
		return e
	}
	k, err := n.key.Subkey(DecodeName(name, false))
	if err != nil {
		return syscall.ENOENT
	}
	subs, err := k.Subkeys()
	if err != nil {
		return errno(err)
	}
	vals, err := k.Values()
	if err != nil {
		return errno(err)
	}
	if len(subs)+len(vals) > 0 {
		return syscall.ENOTEMPTY
	}
	if err := n.key.DeleteSubkey(k.Name()); err != nil {
		return errno(err)
	}
	n.forgetSpellings(name)
	return 0
}

// forgetSpellings drops the kernel's entries for other spellings of a
// removed name (the kernel drops the one it removed): with long entry
// timeouts, "FOO" looked up before `rmdir foo` would otherwise stay.
// Asynchronous: a notification from inside a request can deadlock.
func (n *keyNode) forgetSpellings(name string) {
	go func() {
		for other := range n.Children() {
			if other != name && strings.EqualFold(other, name) {
				n.NotifyEntry(other)
			}
		}
	}()
}

// Create makes a new value: REG_SZ holding an empty string, until the
// writer sets user.reg.type and writes its content.
func (n *keyNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (_ *fs.Inode, _ fs.FileHandle, _ uint32, e syscall.Errno) {
	defer guard(&e)
	if e := n.editable(); e != 0 {
		return nil, nil, 0, e
	}
	vname := DecodeName(name, true)
	if _, err := n.key.Subkey(DecodeName(name, false)); err == nil && Canonical(name, true) {
		return nil, nil, 0, syscall.EISDIR // a value beside a key of its name is written %XX...
	}
	if _, err := n.key.Value(vname); err != nil {
		if err := n.key.SetValue(vname, hive.RegSz, []byte{0, 0}); err != nil {
			return nil, nil, 0, errno(err)
		}
	}
	v, err := n.key.Value(vname)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	vn := &valueNode{c: n.c, hive: n.hive, key: n.key, name: v.Name()}
	entry(out)
	vn.fill(&out.Attr)
	h := &valueHandle{buf: []byte{}, dirty: false}
	return n.NewInode(ctx, vn, fs.StableAttr{Mode: syscall.S_IFREG}), h, fuse.FOPEN_DIRECT_IO, 0
}

func (n *keyNode) Unlink(ctx context.Context, name string) (e syscall.Errno) {
	defer guard(&e)
	if e := n.editable(); e != 0 {
		return e
	}
	if err := n.key.DeleteValue(DecodeName(name, true)); err != nil {
		return errno(err)
	}
	n.forgetSpellings(name)
	return 0
}

// Rename is not offered: hives have no rename, and EXDEV makes mv fall
// back to copy and delete, which the view does support.
func (n *keyNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EXDEV
}
