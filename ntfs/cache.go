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
)

type nodeKey struct {
	ino uint64
	vcn int64
}

// cache keeps parsed MFT records (as inodes) and index nodes. Entries are
// immutable; writers (who hold the volume's lock alone) forget what they
// change.
type cache struct {
	inodes     *lru.Cache[uint64, *inode]
	nodes      *lru.Cache[nodeKey, *indexNode]
	recordSize int
}

func newCache(recordSize int) *cache {
	return &cache{
		inodes:     lru.New[uint64, *inode](maxInodeBytes),
		nodes:      lru.New[nodeKey, *indexNode](maxNodeBytes),
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
	cost := 64
	for _, e := range n.entries {
		cost += 64 + len(e.key) + 2*len(e.name)
	}
	c.nodes.Put(nodeKey{ino, n.vcn}, n, cost)
}

// forget drops what is cached of file ino: its inode and its index nodes.
func (c *cache) forget(ino uint64) {
	c.inodes.Remove(ino)
	c.nodes.RemoveIf(func(k nodeKey) bool { return k.ino == ino })
}

// forgetNode drops one cached index node.
func (c *cache) forgetNode(ino uint64, vcn int64) { c.nodes.Remove(nodeKey{ino, vcn}) }

// forgetInode drops one cached inode.
func (c *cache) forgetInode(n uint64) { c.inodes.Remove(n) }

// purge drops everything (after a failed operation was undone).
func (c *cache) purge() {
	c.inodes.Clear()
	c.nodes.Clear()
}
