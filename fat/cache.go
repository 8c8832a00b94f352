package fat

import (
	"github.com/offvm/offvm/internal/lru"
	"github.com/offvm/offvm/volume"
)

// What a Volume keeps of what it read, in bytes. A directory holds at most
// maxDirBytes (2 MiB) of entries, so the directory cache keeps at least the
// few directories one operation works in (a rename: both parents and the
// moved directory) however large they are. A chain is 4 bytes a cluster:
// a 4 GiB file of 4 KiB clusters is 4 MiB.
const (
	maxCachedDirBytes   = 16 << 20
	maxCachedChainBytes = 8 << 20
	// A listing entry: the slice's pointer and the byName map's entry
	// (key string header, value, bucket overhead).
	listEntryCost = 8 + 64
	entryOverhead = 96 // the item, list element and map entry of lru
)

func newCaches(bytes int) (*lru.Cache[volume.Ino, *dirData], *lru.Cache[volume.Ino, []uint32]) {
	dirs, chains := maxCachedDirBytes, maxCachedChainBytes
	if bytes > 0 {
		dirs, chains = bytes, bytes
	}
	return lru.New[volume.Ino, *dirData](dirs), lru.New[volume.Ino, []uint32](chains)
}

func (d *dirData) cost() int {
	return len(d.data) + 4*len(d.clusters) + listEntryCost*len(d.list) + entryOverhead
}

// cacheDir stores (or re-costs, after a change) directory n's entries.
func (v *Volume) cacheDir(n *node, d *dirData) { v.dirs.Put(n.ino, d, d.cost()) }

// cacheChain stores (or replaces) file n's cluster chain.
func (v *Volume) cacheChain(n *node, chain []uint32) {
	if len(chain) == 0 {
		v.chains.Remove(n.ino)
		return
	}
	v.chains.Put(n.ino, chain, 4*len(chain)+entryOverhead)
}

// uncache drops what the caches hold of a removed node.
func (v *Volume) uncache(n *node) {
	v.dirs.Remove(n.ino)
	v.chains.Remove(n.ino)
}
