package ntfs

import (
	"github.com/offvm/offvm/internal/lru"
)

// Cache bounds, in bytes of parsed metadata: enough for a big directory
// walk, small enough that a daemon serving many volumes holds what they
// use, not all they ever read. Least recently used entries go first.
const (
	maxInodeBytes = 4 << 20
	maxNodeBytes  = 4 << 20
	// Read views are small (a runlist, not a record): this many bytes
	// keep those of a 20,000-file scan tree after the records that
	// readdirplus parsed for it have left the inode cache.
	maxViewBytes = 4 << 20
	// A directory's opened index (its parsed root node and allocation
	// runlist), which every lookup in it needs.
	maxDirBytes = 1 << 20
)

type nodeKey struct {
	ino uint64
	vcn int64
}

// cache keeps parsed MFT records (as inodes), index nodes, the read
// views of files (data_read.go), directories' opened indexes
// (fs_read.go, dirOf). Entries are immutable; writers (who hold the volume's
// lock alone) forget what they change, and forgetting an inode forgets
// what was made from it (its view or opened index).
type cache struct {
	inodes     *lru.Cache[uint64, *inode]
	nodes      *lru.Cache[nodeKey, *indexNode]
	views      *lru.Cache[uint64, *readView]
	dirs       *lru.Cache[uint64, *dirIndex]
	recordSize int
}

func newCache(recordSize int) *cache {
	return &cache{
		inodes:     lru.New[uint64, *inode](maxInodeBytes),
		nodes:      lru.New[nodeKey, *indexNode](maxNodeBytes),
		views:      lru.New[uint64, *readView](maxViewBytes),
		dirs:       lru.New[uint64, *dirIndex](maxDirBytes),
		recordSize: recordSize,
	}
}

func (c *cache) getInode(n uint64) *inode {
	in, _ := c.inodes.Get(n)
	return in
}

// putInode stores in; its resident values alias its records' buffers,
// which are most of its cost.
func (c *cache) putInode(in *inode) {
	cost := 128 + len(in.recs)*c.recordSize
	for _, a := range in.attrs {
		cost += 96 + 24*len(a.runs)
	}
	for _, n := range in.names {
		cost += 96 + len(n.name)
	}
	c.inodes.Put(in.num, in, cost)
}

func (c *cache) getNode(ino uint64, vcn int64) *indexNode {
	n, _ := c.nodes.Get(nodeKey{ino, vcn})
	return n
}

func (c *cache) putNode(ino uint64, n *indexNode) {
	c.nodes.Put(nodeKey{ino, n.vcn}, n, nodeCost(n))
}

func nodeCost(n *indexNode) int {
	cost := 64
	for _, e := range n.entries {
		cost += 64 + len(e.key) + 2*len(e.name)
	}
	return cost
}

func (c *cache) getView(ino uint64) *readView {
	rv, _ := c.views.Get(ino)
	return rv
}

// putView stores a file's read view; a WOF view holds its inode.
func (c *cache) putView(ino uint64, rv *readView) {
	cost := 64
	if s := rv.s; s != nil {
		cost += 96 + 24*len(s.runs) + len(s.value)
	}
	if rv.wof != nil {
		cost += 128 + len(rv.wof.in.recs)*c.recordSize
	}
	c.views.Put(ino, rv, cost)
}

func (c *cache) getDir(ino uint64) *dirIndex {
	di, _ := c.dirs.Get(ino)
	return di
}

// putDir stores a directory's opened index, made from its cached inode
// alone: it is dropped with that inode (forgetInode) by any write of the
// directory's records. Shared by every caller of dirOf: read-only (the
// writers edit a directory through their own dirW).
func (c *cache) putDir(di *dirIndex) {
	cost := 128 + nodeCost(di.root)
	if di.alloc != nil {
		cost += 96 + 24*len(di.alloc.runs)
	}
	c.dirs.Put(di.ino, di, cost)
}

// forget drops what is cached of file ino: its inode, its read view and
// its index nodes.
func (c *cache) forget(ino uint64) {
	c.forgetInode(ino)
	c.nodes.RemoveIf(func(k nodeKey) bool { return k.ino == ino })
}

// forgetNode drops one cached index node.
func (c *cache) forgetNode(ino uint64, vcn int64) { c.nodes.Remove(nodeKey{ino, vcn}) }

// forgetInode drops one cached inode and the read view or opened index
// made from it.
func (c *cache) forgetInode(n uint64) {
	c.inodes.Remove(n)
	c.views.Remove(n)
	c.dirs.Remove(n)
}

// purge drops everything (after a failed operation was undone).
func (c *cache) purge() {
	c.inodes.Clear()
	c.nodes.Clear()
	c.views.Clear()
	c.dirs.Clear()
}
