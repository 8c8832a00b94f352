package btrfs

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// Item types and well-known object ids.
const (
	inodeItemKey  = 1
	inodeRefKey   = 12
	xattrItemKey  = 24
	dirItemKey    = 84
	dirIndexKey   = 96
	extentDataKey = 108
	csumItemKey   = 128
	rootItemKey   = 132

	fsTreeID      = 5
	rootTreeDirID = 6
	csumTreeID    = 7
	firstFreeID   = 256
	csumObjectID  = ^uint64(0) - 9 // -10

	maxCachedNodes = 4096
	// Inode numbers of the default subvolume are its objectids; those
	// of other subvolumes are numbered from otherInos on as they are
	// met: the FUSE tree keeps 40 bits of an engine's numbers.
	otherInos = 1 << 39
)

// FS is an open btrfs file system, read-only, safe for concurrent use.
type FS struct {
	dev    volume.Device
	sb     *super
	chunks []chunk
	root   tree // the root tree
	csums  *tree
	deflt  uint64 // the default subvolume

	mu    sync.Mutex
	nodes map[uint64]*node
	subs  map[uint64]tree
	dirs  map[volume.Ino]*dirList
	items map[volume.Ino]*inodeItem // inode items, the busiest lookup
	inos  map[[2]uint64]volume.Ino
	revs  map[volume.Ino][2]uint64
	exts  map[volume.Ino][]fileExtent
}

var _ volume.FS = (*FS)(nil)

// Open reads the superblock, the chunk tree and the root tree.
func Open(dev volume.Device) (*FS, error) {
	sb, err := readSuper(dev)
	if err != nil {
		return nil, err
	}
	f := &FS{dev: dev, sb: sb, root: tree{sb.root, sb.rootLevel}, nodes: map[uint64]*node{},
		subs: map[uint64]tree{}, dirs: map[volume.Ino]*dirList{}, inos: map[[2]uint64]volume.Ino{}, items: map[volume.Ino]*inodeItem{}, revs: map[volume.Ino][2]uint64{}, exts: map[volume.Ino][]fileExtent{}}
	if err := f.loadChunks(); err != nil {
		return nil, err
	}
	f.deflt = fsTreeID
	err = f.walk(f.root, key{rootTreeDirID, dirItemKey, 0}, key{rootTreeDirID, dirItemKey, ^uint64(0)}, func(_ key, d []byte) bool {
		for _, e := range parseDirItems(d) {
			if e.name == "default" && e.loc.typ == rootItemKey {
				f.deflt = e.loc.obj
			}
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("btrfs: root tree: %w", err)
	}
	if t, err := f.subvol(csumTreeID); err == nil {
		f.csums = &t
	}
	if _, err := f.GetAttr(f.Root()); err != nil {
		return nil, fmt.Errorf("btrfs: default subvolume %d: %w", f.deflt, err)
	}
	return f, nil
}

func (f *FS) Type() string  { return "btrfs" }
func (f *FS) Label() string { return f.sb.label }

// Root is the default subvolume's top directory.
func (f *FS) Root() volume.Ino { return f.ino(f.deflt, firstFreeID) }

// ReadOnlyReason: offvm does not write btrfs.
func (f *FS) ReadOnlyReason() string { return "btrfs is read-only in offvm" }

// DefaultSubvolume is the subvolume id the tree starts from.
func (f *FS) DefaultSubvolume() uint64 { return f.deflt }

// ino numbers objectid obj of subvolume sub.
func (f *FS) ino(sub, obj uint64) volume.Ino {
	if sub == f.deflt && obj < otherInos {
		return volume.Ino(obj)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]uint64{sub, obj}
	if n, ok := f.inos[k]; ok {
		return n
	}
	n := volume.Ino(otherInos + uint64(len(f.inos)))
	f.inos[k], f.revs[n] = n, k
	return n
}

// split is the subvolume and objectid behind an inode number (0, 0 for
// one never handed out).
func (f *FS) split(ino volume.Ino) (uint64, uint64) {
	if ino < otherInos {
		return f.deflt, uint64(ino)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.revs[ino]
	return k[0], k[1]
}

// subvol finds a tree's root block from its ROOT_ITEM (the newest).
func (f *FS) subvol(id uint64) (tree, error) {
	f.mu.Lock()
	t, ok := f.subs[id]
	f.mu.Unlock()
	if ok {
		return t, nil
	}
	var item []byte
	err := f.walk(f.root, key{id, rootItemKey, 0}, key{id, rootItemKey, ^uint64(0)}, func(_ key, d []byte) bool { item = d; return true })
	if err != nil {
		return tree{}, err
	}
	if len(item) < 239 {
		return tree{}, fmt.Errorf("btrfs: subvolume %d: no root item: %w", id, syscall.ENOENT)
	}
	t = tree{le.Uint64(item[176:]), item[238]}
	f.mu.Lock()
	f.subs[id] = t
	f.mu.Unlock()
	return t, nil
}

// errno makes damage EIO for the FUSE layer, keeping the message.
func errno(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%v: %w", err, syscall.EIO)
	}
	return err
}

type inodeItem struct {
	size, nbytes        uint64
	nlink, uid, gid     uint32
	mode                uint32
	flags               uint64
	atime, ctime, mtime time.Time
}

const inodeNoDataSum = 1 << 0

func (f *FS) inode(ino volume.Ino) (*inodeItem, tree, error) {
	sub, obj := f.split(ino)
	if sub == 0 {
		return nil, tree{}, syscall.ENOENT
	}
	t, err := f.subvol(sub)
	if err != nil {
		return nil, tree{}, errno(err)
	}
	f.mu.Lock()
	in, ok := f.items[ino]
	f.mu.Unlock()
	if ok {
		return in, t, nil
	}
	d, err := f.find(t, key{obj, inodeItemKey, 0})
	if err != nil {
		return nil, tree{}, errno(err)
	}
	if d == nil {
		return nil, tree{}, syscall.ENOENT
	}
	if len(d) < 160 {
		return nil, tree{}, errno(fmt.Errorf("btrfs: inode %d/%d: item of %d bytes: %w", sub, obj, len(d), ErrCorrupt))
	}
	ts := func(o int) time.Time { return time.Unix(int64(le.Uint64(d[o:])), int64(le.Uint32(d[o+8:])%1e9)) }
	in = &inodeItem{size: le.Uint64(d[16:]), nbytes: le.Uint64(d[24:]), nlink: le.Uint32(d[40:]), uid: le.Uint32(d[44:]),
		gid: le.Uint32(d[48:]), mode: le.Uint32(d[52:]), flags: le.Uint64(d[64:]), atime: ts(112), ctime: ts(124), mtime: ts(136)}
	f.mu.Lock()
	if len(f.items) > 1<<16 {
		clear(f.items)
	}
	f.items[ino] = in
	f.mu.Unlock()
	return in, t, nil
}

func (f *FS) GetAttr(ino volume.Ino) (volume.Attr, error) {
	in, _, err := f.inode(ino)
	if err != nil {
		return volume.Attr{}, err
	}
	a := volume.Attr{Ino: ino, Size: int64(in.size), Nlink: in.nlink, Blocks: int64(in.nbytes / 512),
		Atime: in.atime, Mtime: in.mtime, Ctime: in.ctime, Mode: modeOf(in.mode)}
	return a, nil
}

func modeOf(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&syscall.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	switch m & syscall.S_IFMT {
	case syscall.S_IFDIR:
		fm |= os.ModeDir
	case syscall.S_IFLNK:
		fm |= os.ModeSymlink
	case syscall.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case syscall.S_IFBLK:
		fm |= os.ModeDevice
	case syscall.S_IFIFO:
		fm |= os.ModeNamedPipe
	case syscall.S_IFSOCK:
		fm |= os.ModeSocket
	}
	return fm
}

type dirEntry struct {
	loc  key
	typ  uint8
	name string
	data []byte
}

// parseDirItems reads the entries packed in a DIR_ITEM, DIR_INDEX or
// XATTR_ITEM (several share an item when their name hashes collide).
func parseDirItems(d []byte) []dirEntry {
	var out []dirEntry
	for len(d) >= 30 {
		dl, nl := int(le.Uint16(d[25:])), int(le.Uint16(d[27:]))
		if 30+nl+dl > len(d) {
			break
		}
		out = append(out, dirEntry{loc: readKey(d), typ: d[29], name: string(d[30 : 30+nl]), data: d[30+nl : 30+nl+dl]})
		d = d[30+nl+dl:]
	}
	return out
}

type dirList struct {
	ents   []volume.DirEntry
	byName map[string]volume.DirEntry
}

var dirTypes = map[uint8]os.FileMode{1: 0, 2: os.ModeDir, 3: os.ModeDevice | os.ModeCharDevice, 4: os.ModeDevice, 5: os.ModeNamedPipe, 6: os.ModeSocket, 7: os.ModeSymlink}

func (f *FS) dir(ino volume.Ino) (*dirList, error) {
	f.mu.Lock()
	l, ok := f.dirs[ino]
	f.mu.Unlock()
	if ok {
		return l, nil
	}
	in, t, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, syscall.ENOTDIR
	}
	sub, obj := f.split(ino)
	l = &dirList{byName: map[string]volume.DirEntry{}}
	err = f.walk(t, key{obj, dirIndexKey, 0}, key{obj, dirIndexKey, ^uint64(0)}, func(_ key, d []byte) bool {
		for _, e := range parseDirItems(d) {
			child := f.ino(sub, e.loc.obj)
			if e.loc.typ == rootItemKey { // a subvolume or snapshot
				child = f.ino(e.loc.obj, firstFreeID)
			}
			de := volume.DirEntry{Name: e.name, Ino: child, Mode: dirTypes[e.typ]}
			l.ents = append(l.ents, de)
			l.byName[e.name] = de
		}
		return len(l.ents) < 1<<24
	})
	if err != nil {
		return nil, errno(fmt.Errorf("btrfs: directory %d/%d: %w", sub, obj, err))
	}
	f.mu.Lock()
	if len(f.dirs) > 4096 {
		clear(f.dirs)
	}
	f.dirs[ino] = l
	f.mu.Unlock()
	return l, nil
}

func (f *FS) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	l, err := f.dir(dir)
	if err != nil {
		return volume.Attr{}, err
	}
	e, ok := l.byName[name]
	if !ok {
		return volume.Attr{}, syscall.ENOENT
	}
	return f.GetAttr(e.Ino)
}

func (f *FS) ReadDir(dir volume.Ino) ([]volume.DirEntry, error) {
	l, err := f.dir(dir)
	if err != nil {
		return nil, err
	}
	return l.ents, nil
}

func (f *FS) xattrs(ino volume.Ino) ([]dirEntry, error) {
	_, t, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	_, obj := f.split(ino)
	var out []dirEntry
	err = f.walk(t, key{obj, xattrItemKey, 0}, key{obj, xattrItemKey, ^uint64(0)}, func(_ key, d []byte) bool {
		out = append(out, parseDirItems(d)...)
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, errno(err)
}

func (f *FS) ListXattr(ino volume.Ino) ([]string, error) {
	xs, err := f.xattrs(ino)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.name
	}
	return out, nil
}

func (f *FS) GetXattr(ino volume.Ino, name string) ([]byte, error) {
	xs, err := f.xattrs(ino)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		if x.name == name {
			return append([]byte{}, x.data...), nil
		}
	}
	return nil, syscall.ENODATA
}

func (f *FS) Readlink(ino volume.Ino) (string, error) {
	in, _, err := f.inode(ino)
	if err != nil {
		return "", err
	}
	if in.mode&syscall.S_IFMT != syscall.S_IFLNK || in.size > 4096 {
		return "", syscall.EINVAL
	}
	b := make([]byte, in.size)
	n, err := f.ReadAt(ino, b, 0)
	if err != nil && n < len(b) {
		return "", err
	}
	return string(b[:n]), nil
}

func (f *FS) StatFS() (volume.StatFS, error) {
	bs := uint64(f.sb.sectorSize)
	return volume.StatFS{BlockSize: f.sb.sectorSize, Blocks: f.sb.totalBytes / bs, BlocksFree: (f.sb.totalBytes - min(f.sb.bytesUsed, f.sb.totalBytes)) / bs, NameMaxLen: 255}, nil
}

// SystemTree is the tree a Linux guest mounts as "/": the default
// subvolume, or when that holds no etc/os-release but one of its
// subvolumes named as installers name them does (Fedora's "root",
// Ubuntu's "@"), that subvolume. inspect reads the guest from it.
func (f *FS) SystemTree() volume.FS {
	if _, err := volume.ReadFile(f, "etc/os-release", 1<<16); err == nil {
		return f
	}
	ents, err := f.ReadDir(f.Root())
	if err != nil {
		return f
	}
	for _, name := range []string{"root", "@", "@rootfs"} {
		for _, e := range ents {
			if _, obj := f.split(e.Ino); e.Name != name || obj != firstFreeID {
				continue
			}
			v := &rootedView{FS: f, root: e.Ino}
			if _, err := volume.ReadFile(v, "etc/os-release", 1<<16); err == nil {
				return v
			}
		}
	}
	return f
}

// rootedView is the file system seen from another subvolume's top.
type rootedView struct {
	*FS
	root volume.Ino
}

func (v *rootedView) Root() volume.Ino { return v.root }
