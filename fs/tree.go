// Package fs is the FUSE tree: the library's folders, each image as a
// directory (disk, p1.., info.json), and each file system through the
// volume interface. It holds no format knowledge: images come from package
// mount, file systems from their engines.
package fs

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"path/filepath"

	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
)

// Options shape the tree.
type Options struct {
	Library  string // directory (or one image file)
	ReadOnly bool   // --ro
	// NoSecrets leaves SAM and SECURITY out of registry/.
	NoSecrets bool
	UID, GID  uint32 // the mounting user, owner of everything
	// Info, when set, describes an open image (inspection fills the
	// guest's OS); nil means mount.Image.Info.
	Info func(*mount.Image) any
	// Drives, when set, gives an image's drive letters ("C" → "p3"),
	// shown as symlinks in the image's directory.
	Drives func(*mount.Image) map[string]string
	// VMDirs are folders of VM configurations outside the library
	// (--libvirt /etc/libvirt/qemu).
	VMDirs []string
}

// Tree is the state shared by every node of one mount.
type Tree struct {
	opts  Options
	owner owner

	volIDs atomic.Uint64 // volume ids: the high bits of FUSE inode numbers

	mu     sync.Mutex
	images map[string]*imageNode // by host path, every image looked up so far

	parentsOnce sync.Once
	parents     map[string]bool // images that are another image's parent

	vmsOnce sync.Once
	vmIndex *library.VMs // the library's VM configurations (vms.go)
}

// isParent reports whether the image at path is the parent of another
// image in the library; the library is scanned once, on first need.
func (t *Tree) isParent(path string) bool {
	t.parentsOnce.Do(func() { t.parents = library.Parents(t.opts.Library) })
	abs, err := filepath.Abs(path)
	return err == nil && t.parents[abs]
}

// NewTree prepares the tree for a library.
func NewTree(opts Options) *Tree {
	return &Tree{opts: opts, owner: owner{opts.UID, opts.GID}, images: map[string]*imageNode{}}
}

// Images returns the images opened so far (for commit at unmount), in
// path order.
func (t *Tree) Images() []*mount.Image {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*mount.Image
	for _, n := range t.images {
		if im, _ := n.peek(); im != nil {
			out = append(out, im)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// imageFor returns the single node of an image: the same image reached
// twice (a library linked into itself) is opened once.
func (t *Tree) imageFor(path string) *imageNode {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.images[path]; ok {
		return n
	}
	n := &imageNode{tree: t, path: path}
	t.images[path] = n
	return n
}

// Timeouts: the library mirrors a host directory that may change under us,
// so its entries are short-lived; inside images we are the only writer.
var (
	libraryTimeout = time.Second
	volumeTimeout  = 60 * time.Second
)

// Adopt shows im, already open and holding its uncommitted changes, in
// the tree instead of opening the image again: how a daemon whose commit
// failed mounts the same images once more, with the user's work in them.
func (t *Tree) Adopt(im *mount.Image) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.images[im.Path] = &imageNode{tree: t, path: im.Path, im: im, done: true, vols: map[int]*volCtx{}}
}
