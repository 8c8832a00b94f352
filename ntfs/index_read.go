package ntfs

import (
	"encoding/binary"
	"fmt"
	"sort"
	"syscall"
)

// Index entry flags.
const (
	ieSubnode = 0x01
	ieLast    = 0x02
)

const maxIndexDepth = 32

// indexEntry is one entry of a $I30 index node.
type indexEntry struct {
	ref   uint64 // file reference, sequence number included
	flags uint16
	key   []byte // the $FILE_NAME value
	data  []byte // a view index entry's data (nil in $I30)
	child int64  // sub-node VCN when flags&ieSubnode
	name  []uint16
	ns    byte
}

// indexNode is a parsed node: the root or one INDX block.
type indexNode struct {
	vcn     int64 // -1 for the root
	entries []indexEntry
	leaf    bool
}

// parseIndexNode decodes the $I30 entries after an index node header at b[0].
func parseIndexNode(b []byte, vcn int64) (*indexNode, error) {
	return parseNode(b, vcn, true)
}

// parseNode decodes a node of any index; fileNames checks and decodes
// $FILE_NAME keys.
func parseNode(b []byte, vcn int64, fileNames bool) (*indexNode, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("ntfs: index node %d: truncated header: %w", vcn, syscall.EIO)
	}
	first := int(binary.LittleEndian.Uint32(b))
	total := int(binary.LittleEndian.Uint32(b[4:]))
	if total > len(b) || first < 16 || first > total {
		return nil, fmt.Errorf("ntfs: index node %d: bad sizes (%d, %d of %d): %w", vcn, first, total, len(b), syscall.EIO)
	}
	n := &indexNode{vcn: vcn, leaf: b[12]&1 == 0, entries: make([]indexEntry, 0, countEntries(b[:total], first))}
	// The names share one allocation (they take at most half the bytes):
	// a node is parsed on every lookup after a write changed it.
	var units []uint16
	if fileNames {
		units = make([]uint16, 0, (total-first)/2)
	}
	for off := first; ; {
		if off+0x10 > total {
			return nil, fmt.Errorf("ntfs: index node %d: no last entry: %w", vcn, syscall.EIO)
		}
		e := indexEntry{ref: binary.LittleEndian.Uint64(b[off:]), flags: binary.LittleEndian.Uint16(b[off+12:]), child: -1}
		l := int(binary.LittleEndian.Uint16(b[off+8:]))
		kl := int(binary.LittleEndian.Uint16(b[off+10:]))
		if l < 0x10 || off+l > total || l%8 != 0 || 0x10+kl > l {
			return nil, fmt.Errorf("ntfs: index node %d: entry at %d has bad length %d: %w", vcn, off, l, syscall.EIO)
		}
		if e.flags&ieSubnode != 0 {
			if l < 0x18 || 0x10+kl > l-8 {
				return nil, fmt.Errorf("ntfs: index node %d: entry at %d has no room for its sub-node: %w", vcn, off, syscall.EIO)
			}
			e.child = int64(binary.LittleEndian.Uint64(b[off+l-8:]))
		}
		if e.flags&ieLast == 0 && !fileNames {
			e.key = b[off+0x10 : off+0x10+kl]
			// A view index ($R, $SII, $SDH) keeps data after the key.
			do, dl := int(e.ref&0xffff), int(e.ref>>16&0xffff)
			if dl > 0 && do >= 0x10+kl && do+dl <= l {
				e.data = b[off+do : off+do+dl]
			}
		} else if e.flags&ieLast == 0 {
			e.key = b[off+0x10 : off+0x10+kl]
			if kl < 0x42 || 0x42+2*int(e.key[0x40]) > kl {
				return nil, fmt.Errorf("ntfs: index node %d: entry at %d has a bad key: %w", vcn, off, syscall.EIO)
			}
			e.ns = e.key[0x41]
			nl := int(e.key[0x40])
			for i := 0; i < nl; i++ {
				units = append(units, binary.LittleEndian.Uint16(e.key[0x42+2*i:]))
			}
			e.name = units[len(units)-nl : len(units) : len(units)]
		}
		n.entries = append(n.entries, e)
		if e.flags&ieLast != 0 {
			return n, nil
		}
		off += l
	}
}

// countEntries counts the entries from off to the last one, as far as
// their lengths say: parseNode's capacity (it checks them itself), so
// that a big directory's blocks are not each grown five times.
func countEntries(b []byte, off int) int {
	n := 0
	for off+0x10 <= len(b) {
		n++
		l := int(binary.LittleEndian.Uint16(b[off+8:]))
		if binary.LittleEndian.Uint16(b[off+12:])&ieLast != 0 || l < 0x10 {
			break
		}
		off += l
	}
	return n
}

// dirIndex is what is needed to walk a directory's $I30 tree.
type dirIndex struct {
	ino       uint64
	root      *indexNode
	blockSize int
	alloc     *stream
}

func (v *Volume) openIndex(in *inode) (*dirIndex, error) {
	rootAttr := in.find(atIndexRoot, "$I30")
	if rootAttr == nil || !rootAttr.resident {
		return nil, fmt.Errorf("ntfs: MFT record %d is not a directory: %w", in.num, syscall.ENOTDIR)
	}
	rv := rootAttr.value
	if len(rv) < 0x20 {
		return nil, fmt.Errorf("ntfs: directory %d: short $INDEX_ROOT: %w", in.num, syscall.EIO)
	}
	root, err := parseIndexNode(rv[0x10:], -1)
	if err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: %w", in.num, err)
	}
	di := &dirIndex{ino: in.num, root: root, blockSize: int(binary.LittleEndian.Uint32(rv[8:]))}
	if di.blockSize < 512 || di.blockSize > 65536 || !pow2(int64(di.blockSize)) {
		return nil, fmt.Errorf("ntfs: directory %d: bad index block size %d: %w", in.num, di.blockSize, syscall.EIO)
	}
	di.alloc = in.find(atIndexAlloc, "$I30")
	return di, nil
}

// vcnBytes is the size of one index VCN: a cluster, or 512 bytes when
// index blocks are smaller than clusters.
func (v *Volume) vcnBytes(blockSize int) int64 {
	if int64(blockSize) >= v.geo.clusterSize {
		return v.geo.clusterSize
	}
	return 512
}

// node returns the INDX block at vcn, cached.
func (v *Volume) node(di *dirIndex, vcn int64) (*indexNode, error) {
	if n := v.cache.getNode(di.ino, vcn); n != nil {
		return n, nil
	}
	if di.alloc == nil || di.alloc.resident {
		return nil, fmt.Errorf("ntfs: directory %d: sub-node %d without $INDEX_ALLOCATION: %w", di.ino, vcn, syscall.EIO)
	}
	off := vcn * v.vcnBytes(di.blockSize)
	if vcn < 0 || off+int64(di.blockSize) > di.alloc.dataSize {
		return nil, fmt.Errorf("ntfs: directory %d: sub-node %d outside the index: %w", di.ino, vcn, syscall.EIO)
	}
	buf := make([]byte, di.blockSize)
	if err := v.readRuns(di.alloc.runs, buf, off); err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d: %w", di.ino, vcn, err)
	}
	n, err := v.parseBlock(di, vcn, buf)
	if err != nil {
		return nil, err
	}
	v.cache.putNode(di.ino, n)
	return n, nil
}

// parseBlock decodes the INDX block at vcn from buf, whose update
// sequence it undoes in place; the node's keys point into buf.
func (v *Volume) parseBlock(di *dirIndex, vcn int64, buf []byte) (*indexNode, error) {
	if err := applyFixup(buf, "INDX"); err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d: %w", di.ino, vcn, err)
	}
	n, err := parseIndexNode(buf[0x18:], vcn)
	if err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: %w", di.ino, err)
	}
	return n, nil
}

// lookupEntry descends the B+ tree for name; it never scans. In each
// node a binary search finds the first entry not below name (the last
// entry, which has no key, ends every node).
func (v *Volume) lookupEntry(di *dirIndex, name []uint16) (*indexEntry, error) {
	n, i, err := v.locate(di, name)
	if err != nil {
		return nil, err
	}
	return &n.entries[i], nil
}

// locate is lookupEntry's descent: the node holding name's entry and the
// entry's place in it (its neighbours are the names next to it).
func (v *Volume) locate(di *dirIndex, name []uint16) (*indexNode, int, error) {
	n := di.root
	for depth := 0; depth < maxIndexDepth; depth++ {
		keys := n.entries[:len(n.entries)-1]
		i := sort.Search(len(keys), func(i int) bool { return v.up.collate(name, keys[i].name) <= 0 })
		exact, fold := -1, -1
		for ; i < len(keys) && v.up.collate(name, keys[i].name) == 0; i++ {
			if exact < 0 && equalUnits(name, keys[i].name) {
				exact = i
			}
			if fold < 0 {
				fold = i
			}
		}
		next := n.entries[i].child // the first entry above name, or the last
		if exact >= 0 {
			return n, exact, nil
		}
		if fold >= 0 {
			return n, fold, nil
		}
		if next < 0 {
			return nil, 0, syscall.ENOENT
		}
		var err error
		if n, err = v.node(di, next); err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("ntfs: directory %d: index deeper than %d levels: %w", di.ino, maxIndexDepth, syscall.EIO)
}

// walkIndex calls fn for every entry in collation order.
func (v *Volume) walkIndex(di *dirIndex, fn func(e *indexEntry) error) error {
	get := func(vcn int64) (*indexNode, error) { return v.node(di, vcn) }
	return walkTree(di, get, func(e *indexEntry, _ int64) error { return fn(e) })
}

// walkTree calls fn for every entry of di in collation order, with the
// VCN of the node holding it (-1: the root), reading nodes with get.
func walkTree(di *dirIndex, get func(vcn int64) (*indexNode, error), fn func(e *indexEntry, vcn int64) error) error {
	seen := map[int64]bool{}
	var walk func(n *indexNode, depth int) error
	walk = func(n *indexNode, depth int) error {
		if depth > maxIndexDepth {
			return fmt.Errorf("ntfs: directory %d: index too deep: %w", di.ino, syscall.EIO)
		}
		for i := range n.entries {
			e := &n.entries[i]
			if e.child >= 0 {
				if seen[e.child] {
					return fmt.Errorf("ntfs: directory %d: index block %d referenced twice: %w", di.ino, e.child, syscall.EIO)
				}
				seen[e.child] = true
				c, err := get(e.child)
				if err != nil {
					return err
				}
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			if e.flags&ieLast == 0 {
				if err := fn(e, n.vcn); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(di.root, 0)
}

func equalUnits(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
