package btrfs

import (
	"fmt"
	"sort"
)

// Key is a btrfs item key, ordered by objectid, type, offset.
type key struct {
	obj uint64
	typ uint8
	off uint64
}

func (a key) less(b key) bool {
	if a.obj != b.obj {
		return a.obj < b.obj
	}
	if a.typ != b.typ {
		return a.typ < b.typ
	}
	return a.off < b.off
}

func readKey(b []byte) key { return key{le.Uint64(b), b[8], le.Uint64(b[9:])} }

const (
	headerSize = 101
	itemSize   = 25
	ptrSize    = 33
	maxLevel   = 8
)

// node is one tree block, checked.
type node struct {
	level uint8
	keys  []key
	ptrs  []uint64 // internal nodes
	data  [][]byte // leaves: each item's data
}

// readNode reads and checks the tree block at logical address addr.
func (f *FS) readNode(addr uint64, wantLevel int) (*node, error) {
	f.mu.Lock()
	n, ok := f.nodes[addr]
	f.mu.Unlock()
	if ok {
		return n, nil
	}
	b := make([]byte, f.sb.nodeSize)
	if err := f.readLogical(b, addr); err != nil {
		return nil, fmt.Errorf("tree block %d: %w", addr, err)
	}
	if !f.sb.csumOK(b) {
		return nil, fmt.Errorf("tree block %d: checksum mismatch: %w", addr, ErrCorrupt)
	}
	fsid := f.sb.treeFSID()
	if string(b[32:48]) != string(fsid[:]) || le.Uint64(b[48:]) != addr {
		return nil, fmt.Errorf("tree block %d: not this file system's block at this address: %w", addr, ErrCorrupt)
	}
	n = &node{level: b[100]}
	if wantLevel >= 0 && int(n.level) != wantLevel || n.level > maxLevel {
		return nil, fmt.Errorf("tree block %d: level %d, expected %d: %w", addr, n.level, wantLevel, ErrCorrupt)
	}
	cnt := int(le.Uint32(b[96:]))
	body := b[headerSize:]
	if n.level > 0 {
		if cnt*ptrSize > len(body) {
			return nil, fmt.Errorf("tree block %d: %d pointers: %w", addr, cnt, ErrCorrupt)
		}
		for i := 0; i < cnt; i++ {
			p := body[i*ptrSize:]
			n.keys = append(n.keys, readKey(p))
			n.ptrs = append(n.ptrs, le.Uint64(p[17:]))
		}
	} else {
		if cnt*itemSize > len(body) {
			return nil, fmt.Errorf("tree block %d: %d items: %w", addr, cnt, ErrCorrupt)
		}
		for i := 0; i < cnt; i++ {
			p := body[i*itemSize:]
			off, size := int(le.Uint32(p[17:])), int(le.Uint32(p[21:]))
			if off+size > len(body) || off < cnt*itemSize && size > 0 {
				return nil, fmt.Errorf("tree block %d item %d: data at %d+%d: %w", addr, i, off, size, ErrCorrupt)
			}
			n.keys = append(n.keys, readKey(p))
			n.data = append(n.data, body[off:off+size])
		}
	}
	f.mu.Lock()
	if len(f.nodes) > maxCachedNodes {
		clear(f.nodes)
	}
	f.nodes[addr] = n
	f.mu.Unlock()
	return n, nil
}

// tree is a tree's root block.
type tree struct {
	addr  uint64
	level uint8
}

// walk calls fn for every item with lo <= key <= hi, in key order, until
// fn returns false.
func (f *FS) walk(t tree, lo, hi key, fn func(key, []byte) bool) error {
	_, err := f.walkNode(t.addr, int(t.level), lo, hi, fn, 0)
	return err
}

func (f *FS) walkNode(addr uint64, level int, lo, hi key, fn func(key, []byte) bool, depth int) (bool, error) {
	if depth > maxLevel {
		return false, fmt.Errorf("tree deeper than %d: %w", maxLevel, ErrCorrupt)
	}
	n, err := f.readNode(addr, level)
	if err != nil {
		return false, err
	}
	if n.level == 0 {
		i := sort.Search(len(n.keys), func(i int) bool { return !n.keys[i].less(lo) })
		for ; i < len(n.keys); i++ {
			if hi.less(n.keys[i]) {
				return false, nil
			}
			if !fn(n.keys[i], n.data[i]) {
				return false, nil
			}
		}
		return true, nil
	}
	// the child holding lo is the last whose first key is <= lo
	i := sort.Search(len(n.keys), func(i int) bool { return lo.less(n.keys[i]) }) - 1
	i = max(i, 0)
	for ; i < len(n.keys); i++ {
		if hi.less(n.keys[i]) {
			return false, nil
		}
		more, err := f.walkNode(n.ptrs[i], int(n.level)-1, lo, hi, fn, depth+1)
		if err != nil || !more {
			return false, err
		}
	}
	return true, nil
}

// find returns the item with exactly key k, or nil.
func (f *FS) find(t tree, k key) ([]byte, error) {
	var out []byte
	err := f.walk(t, k, k, func(_ key, d []byte) bool { out = d; return false })
	return out, err
}
