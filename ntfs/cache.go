package ntfs

import "sync"

// Cache bounds: enough for a big directory walk, small enough for a daemon.
const (
	maxCachedInodes = 8192
	maxCachedNodes  = 2048
)

type nodeKey struct {
	ino uint64
	vcn int64
}

// cache keeps parsed MFT records (as inodes) and index nodes. It is
// bounded by dropping everything when full, which keeps it simple and
// correct: entries are immutable and writers invalidate what they change.
type cache struct {
	mu     sync.Mutex
	inodes map[uint64]*inode
	nodes  map[nodeKey]*indexNode
}

func newCache() *cache {
	return &cache{inodes: map[uint64]*inode{}, nodes: map[nodeKey]*indexNode{}}
}

func (c *cache) getInode(n uint64) *inode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inodes[n]
}

func (c *cache) putInode(in *inode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inodes) >= maxCachedInodes {
		clear(c.inodes)
	}
	c.inodes[in.num] = in
}

func (c *cache) getNode(ino uint64, vcn int64) *indexNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[nodeKey{ino, vcn}]
}

func (c *cache) putNode(ino uint64, n *indexNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) >= maxCachedNodes {
		clear(c.nodes)
	}
	c.nodes[nodeKey{ino, n.vcn}] = n
}

// forget drops what is cached of file ino: its inode and its index nodes.
func (c *cache) forget(ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inodes, ino)
	for k := range c.nodes {
		if k.ino == ino {
			delete(c.nodes, k)
		}
	}
}

// forgetNode drops one cached index node.
func (c *cache) forgetNode(ino uint64, vcn int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, nodeKey{ino, vcn})
}

// forgetInode drops one cached inode.
func (c *cache) forgetInode(n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inodes, n)
}

// purge drops everything (after a failed operation was undone).
func (c *cache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.inodes)
	clear(c.nodes)
}
