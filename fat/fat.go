// Package fat reads and writes FAT12, FAT16 and FAT32 volumes with VFAT
// long names (Microsoft, "FAT: General Overview of On-Disk Format",
// fatgen103). It serves the volume.FS and volume.Writer interfaces over a
// volume.Device.
package fat

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/offvm/offvm/internal/lru"
	"github.com/offvm/offvm/volume"
)

// Options controls how a volume is opened.
type Options struct {
	// ReadOnly refuses every change with EROFS and writes nothing.
	ReadOnly bool
	// cacheBytes, when set, bounds each cache instead of the defaults
	// (tests make it tiny so that every operation meets evictions).
	cacheBytes int
}

// Volume is an open FAT file system. It is safe for concurrent use: reads
// share mu (file content is read in parallel); what they fill lazily (the
// nodes map, directory listings, cluster chain caches) is filled under
// lazy; changes take mu exclusively.
//
// nodes holds every name seen for the Volume's life: FAT has no inode
// numbers, so the Ino a node was given is its only identity and must stay
// what the kernel was told. What a node costs in bytes beyond that (a
// directory's raw entries and parsed listing, a file's cluster chain) is
// kept in the byte-bounded LRU caches dirs and chains and read again from
// the device and the FAT when it was evicted; writes go through to both,
// so what is read again is what was cached.
type Volume struct {
	mu   sync.RWMutex
	lazy sync.Mutex // under mu.RLock: nodes, nextIno and the nodes' caches
	dev  volume.Device
	ro   bool
	g    geometry
	fat  *fatTable

	free        uint32 // free clusters, counted from the FAT at open
	nextFree    uint32 // where the next allocation starts looking
	fsInfoDirty bool

	label   string
	root    *node
	nodes   map[volume.Ino]*node
	nextIno volume.Ino

	dirs   *lru.Cache[volume.Ino, *dirData]
	chains *lru.Cache[volume.Ino, []uint32]
}

var (
	_ volume.FS     = (*Volume)(nil)
	_ volume.Writer = (*Volume)(nil)
	// FAT has times and attribute bits (system.ntfs_attrib), no links.
	_ volume.Timer   = (*Volume)(nil)
	_ volume.Xattrer = (*Volume)(nil)
)

// Open reads the boot sector and FAT of the volume on dev.
func Open(dev volume.Device, opts Options) (*Volume, error) {
	if dev.Size() < 512 {
		return nil, fmt.Errorf("fat: partition of %d bytes is too small: %w", dev.Size(), syscall.EINVAL)
	}
	b := make([]byte, 512)
	if _, err := dev.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("fat: reading boot sector: %w", syscall.EIO)
	}
	g, err := parseBoot(b, dev.Size())
	if err != nil {
		return nil, err
	}
	v := &Volume{dev: dev, ro: opts.ReadOnly, g: g, nodes: map[volume.Ino]*node{}, nextIno: 2}
	v.dirs, v.chains = newCaches(opts.cacheBytes)
	if err := v.loadFAT(); err != nil {
		return nil, err
	}
	v.countFree()
	v.readFSInfo()
	v.root = &node{ino: 1, ent: dirent{attr: attrDir, cluster: g.rootCluster}}
	v.nodes[1] = v.root
	d, err := v.loadDir(v.root)
	if err != nil {
		return nil, err
	}
	v.label = v.findLabel(d)
	return v, nil
}

// Type is "fat12", "fat16" or "fat32".
func (v *Volume) Type() string { return fmt.Sprintf("fat%d", v.g.kind) }

// Label is the volume label entry of the root directory, else the boot
// sector's label.
func (v *Volume) Label() string { return v.label }

// Root is the root directory's Ino.
func (v *Volume) Root() volume.Ino { return 1 }

// node is a file or directory seen by this Volume. Its Ino is kept for the
// Volume's life, across renames; its entry fields are the truth and are
// written through to the parent directory on every change.
type node struct {
	ino    volume.Ino
	parent *node
	slot   int // index of the 8.3 entry in the parent directory
	first  int // index of the first slot of its long name (== slot without one)
	name   string
	ent    dirent
	gone   bool // removed; its Ino answers ENOENT

	// children holds a directory's nodes by 8.3 slot, so that a listing
	// parsed again (after its cache entry was evicted) finds the Inos it
	// had.
	children map[int]*node
}

func (n *node) isDir() bool { return n.ent.attr&attrDir != 0 }

// get finds a live node by Ino.
func (v *Volume) get(ino volume.Ino) (*node, error) {
	n := v.nodes[ino]
	if n == nil || n.gone {
		return nil, fmt.Errorf("fat: inode %d: %w", ino, syscall.ENOENT)
	}
	return n, nil
}

// rget is get for a reader holding mu.RLock: lookups fill the nodes map.
func (v *Volume) rget(ino volume.Ino) (*node, error) {
	v.lazy.Lock()
	defer v.lazy.Unlock()
	return v.get(ino)
}

// getDir finds a live directory by Ino with its entries.
func (v *Volume) getDir(ino volume.Ino) (*node, *dirData, error) {
	n, err := v.get(ino)
	if err != nil {
		return nil, nil, err
	}
	if !n.isDir() {
		return nil, nil, fmt.Errorf("fat: inode %d: %w", ino, syscall.ENOTDIR)
	}
	d, err := v.loadDir(n)
	return n, d, err
}

// Close writes what is pending. The device stays open (it is the caller's).
func (v *Volume) Close() error { return v.Sync() }
