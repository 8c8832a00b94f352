package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
)

// Index insertion splits full nodes (the median goes up; a full root moves
// its entries into a new block). Removal takes entries out of leaves,
// replacing an inner entry by its predecessor; when a node would be left
// empty the index is rebuilt, balanced, from its entries.

// position is where name goes in n, or the index of an equal entry.
func (dw *dirW) position(n *wnode, key []byte) (int, bool) {
	for i := range n.entries {
		c := dw.cmp(key, n.entries[i].key)
		if c == 0 {
			return i, true
		}
		if c < 0 {
			return i, false
		}
	}
	return len(n.entries), false
}

// insert adds an entry for key (a $FILE_NAME value) pointing at ref.
func (dw *dirW) insert(ref uint64, key []byte) error {
	return dw.insertEntry(wentry{ref: ref, key: key, child: -1})
}

// insertEntry adds e (a leaf entry) at its place.
func (dw *dirW) insertEntry(e wentry) error {
	key := e.key
	var path []*wnode
	var pos []int
	vcn := int64(-1)
	for depth := 0; ; depth++ {
		if depth > maxIndexDepth {
			return fmt.Errorf("ntfs: directory %d: index too deep: %w", dw.r.num, syscall.EIO)
		}
		n, err := dw.readNode(vcn)
		if err != nil {
			return err
		}
		i, found := dw.position(n, key)
		if found {
			return fmt.Errorf("ntfs: directory %d already holds that name: %w", dw.r.num, syscall.EEXIST)
		}
		path, pos = append(path, n), append(pos, i)
		if vcn = n.childAt(i); vcn < 0 {
			break
		}
	}
	leaf, i := path[len(path)-1], pos[len(pos)-1]
	leaf.entries = append(leaf.entries[:i], append([]wentry{e}, leaf.entries[i:]...)...)
	return dw.fix(path, pos, len(path)-1)
}

// fix writes path[k], splitting it upwards while it does not fit.
func (dw *dirW) fix(path []*wnode, pos []int, k int) error {
	n := path[k]
	err := dw.writeNode(n)
	if !errors.Is(err, errNodeFull) {
		return err
	}
	if n.vcn < 0 { // push the root's entries down into a new block
		entries, end := n.entries, n.endChild
		n.entries, n.endChild = nil, -1
		if err := dw.writeNode(n); err != nil { // emptied first: room for the allocation
			return err
		}
		vcn, err := dw.newBlock()
		if err != nil {
			return err
		}
		child := &wnode{vcn: vcn, entries: entries, endChild: end}
		n.endChild = vcn
		if err := dw.writeNode(n); err != nil {
			return err
		}
		return dw.fix([]*wnode{n, child}, []int{0, 0}, 1)
	}
	if len(n.entries) < 3 {
		return fmt.Errorf("ntfs: directory %d: index entries too large to split: %w", dw.r.num, syscall.EIO)
	}
	mid := len(n.entries) / 2
	median := n.entries[mid]
	vcn, err := dw.newBlock()
	if err != nil {
		return err
	}
	left := &wnode{vcn: vcn, entries: append([]wentry(nil), n.entries[:mid]...), endChild: median.child}
	n.entries = append([]wentry(nil), n.entries[mid+1:]...)
	median.child = left.vcn
	if err := dw.writeNode(left); err != nil {
		return err
	}
	if err := dw.writeNode(n); err != nil {
		return err
	}
	parent, i := path[k-1], pos[k-1]
	parent.entries = append(parent.entries[:i], append([]wentry{median}, parent.entries[i:]...)...)
	return dw.fix(path, pos, k-1)
}

// find descends to the entry for name with reference ref (any when ref
// is 0) and returns the path to it.
func (dw *dirW) find(key []byte, ref uint64) ([]*wnode, []int, error) {
	var path []*wnode
	var pos []int
	vcn := int64(-1)
	for depth := 0; depth <= maxIndexDepth; depth++ {
		n, err := dw.readNode(vcn)
		if err != nil {
			return nil, nil, err
		}
		i, found := dw.position(n, key)
		path, pos = append(path, n), append(pos, i)
		if found && (ref == 0 || n.entries[i].ref&refNumMask == ref&refNumMask) {
			return path, pos, nil
		}
		if vcn = n.childAt(i); vcn < 0 {
			return nil, nil, fmt.Errorf("ntfs: directory %d: no index entry for that name: %w", dw.r.num, syscall.ENOENT)
		}
	}
	return nil, nil, fmt.Errorf("ntfs: directory %d: index too deep: %w", dw.r.num, syscall.EIO)
}

// update replaces the key of an entry (same name: sizes, times, flags);
// an entry that already holds key is left alone, its node unwritten.
func (dw *dirW) update(ref uint64, key []byte) error {
	path, pos, err := dw.find(key, ref)
	if err != nil {
		return err
	}
	n := path[len(path)-1]
	e := &n.entries[pos[len(pos)-1]]
	if bytes.Equal(e.key, key) {
		return nil
	}
	e.key = key
	return dw.writeNode(n)
}

// remove deletes the entry for key pointing at ref (any ref when 0).
// An entry of a leaf goes; an inner entry is replaced by its predecessor
// (the last entry of the rightmost leaf of its left subtree). A node
// left empty is merged with a sibling through their separator, as in any
// B-tree, so a removal touches O(depth) nodes; only trees of a shape
// this cannot handle (unbalanced, or a key that no longer fits) are
// rebuilt.
func (dw *dirW) remove(key []byte, ref uint64) error {
	path, pos, err := dw.find(key, ref)
	if err != nil {
		return err
	}
	k := len(path) - 1
	n, i := path[k], pos[k]
	if n.entries[i].child < 0 { // in a leaf
		n.entries = append(n.entries[:i], n.entries[i+1:]...)
		return dw.settle(path, pos, k, ref, key)
	}
	// Inner entry: the path goes on to the predecessor.
	for vcn := n.entries[i].child; ; {
		if len(path) > maxIndexDepth {
			return fmt.Errorf("ntfs: directory %d: index too deep: %w", dw.r.num, syscall.EIO)
		}
		m, err := dw.readNode(vcn)
		if err != nil {
			return err
		}
		path, pos = append(path, m), append(pos, len(m.entries))
		if m.endChild < 0 {
			break
		}
		vcn = m.endChild
	}
	leaf := path[len(path)-1]
	if !leaf.leaf() || len(leaf.entries) == 0 {
		return dw.rebuildWithout(ref, key)
	}
	pred := leaf.entries[len(leaf.entries)-1]
	leaf.entries = leaf.entries[:len(leaf.entries)-1]
	n.entries[i].ref, n.entries[i].key, n.entries[i].data = pred.ref, pred.key, pred.data
	if err := dw.writeNode(n); err != nil {
		if errors.Is(err, errNodeFull) {
			return dw.rebuildWithout(ref, key)
		}
		return err
	}
	return dw.settle(path, pos, len(path)-1, ref, key)
}

// settle writes path[j] after a removal, merging it away when it is
// left without entries (the root may keep none).
func (dw *dirW) settle(path []*wnode, pos []int, j int, ref uint64, key []byte) error {
	c := path[j]
	if len(c.entries) > 0 || j == 0 {
		return dw.writeNode(c)
	}
	p, i := path[j-1], pos[j-1]
	if len(p.entries) == 0 { // only the root has none: the tree loses a level
		p.endChild = c.endChild
		dw.freeBlock(c.vcn)
		return dw.settle(path, pos, j-1, ref, key)
	}
	var s *wnode
	var err error
	if i < len(p.entries) { // merge into the right sibling
		if s, err = dw.readNode(p.childAt(i + 1)); err != nil {
			return err
		}
		if s.leaf() != (c.endChild < 0) {
			return dw.rebuildWithout(ref, key)
		}
		sep := p.entries[i]
		s.entries = append([]wentry{{ref: sep.ref, key: sep.key, data: sep.data, child: c.endChild}}, s.entries...)
		p.entries = append(p.entries[:i], p.entries[i+1:]...)
	} else { // the last child: merge into the left sibling
		i = len(p.entries) - 1
		if s, err = dw.readNode(p.entries[i].child); err != nil {
			return err
		}
		if s.leaf() != (c.endChild < 0) {
			return dw.rebuildWithout(ref, key)
		}
		sep := p.entries[i]
		s.entries = append(s.entries, wentry{ref: sep.ref, key: sep.key, data: sep.data, child: s.endChild})
		s.endChild = c.endChild
		p.entries = p.entries[:i]
		p.endChild = s.vcn
		i = len(p.entries)
	}
	dw.freeBlock(c.vcn)
	if err := dw.writeNode(s); err == nil {
		return dw.settle(path, pos, j-1, ref, key)
	} else if !errors.Is(err, errNodeFull) {
		return err
	}
	// The merged sibling overflows: split it, which puts an entry back into p.
	sp := append(append([]*wnode(nil), path[:j]...), s)
	spos := append(append([]int(nil), pos[:j]...), 0)
	spos[j-1] = i
	return dw.fix(sp, spos, j)
}

// rebuildWithout rebuilds the whole index without one entry.
func (dw *dirW) rebuildWithout(ref uint64, key []byte) error {
	var all []wentry
	var blocks []int64
	var walk func(vcn int64, depth int) error
	walk = func(vcn int64, depth int) error {
		if depth > maxIndexDepth {
			return fmt.Errorf("ntfs: directory %d: index too deep: %w", dw.r.num, syscall.EIO)
		}
		n, err := dw.readNode(vcn)
		if err != nil {
			return err
		}
		if vcn >= 0 {
			blocks = append(blocks, vcn)
		}
		for i := 0; i <= len(n.entries); i++ {
			if c := n.childAt(i); c >= 0 {
				if err := walk(c, depth+1); err != nil {
					return err
				}
			}
			if i < len(n.entries) {
				e := n.entries[i]
				if (ref == 0 || e.ref&refNumMask == ref&refNumMask) && dw.cmp(e.key, key) == 0 {
					continue
				}
				all = append(all, wentry{ref: e.ref, key: e.key, data: e.data, child: -1})
			}
		}
		return nil
	}
	if err := walk(-1, 0); err != nil {
		return err
	}
	for _, b := range blocks {
		dw.freeBlock(b)
	}
	return dw.build(all)
}

// build writes a balanced tree holding entries (sorted), bottom up.
func (dw *dirW) build(level []wentry) error {
	last := int64(-1)
	for round := 0; ; round++ {
		if round > maxIndexDepth {
			return fmt.Errorf("ntfs: directory %d: index build does not converge: %w", dw.r.num, syscall.EIO)
		}
		root := &wnode{vcn: -1, entries: level, endChild: last}
		err := dw.writeNode(root)
		if err == nil {
			return dw.saveAlloc()
		}
		if !errors.Is(err, errNodeFull) {
			return err
		}
		var next []wentry
		var cur []wentry
		flush := func(endChild int64) (int64, error) {
			vcn, err := dw.newBlock()
			if err != nil {
				return 0, err
			}
			return vcn, dw.writeNode(&wnode{vcn: vcn, entries: cur, endChild: endChild})
		}
		limit := dw.blockSize * 3 / 4 // leave room for later inserts
		size := 0
		for i, e := range level {
			es := 0x10 + align8(len(e.key)+len(e.data)) + 8
			if size+es <= limit || len(cur) < 2 {
				cur, size = append(cur, e), size+es
				continue
			}
			sep := e
			if i == len(level)-1 { // never leave the last block empty
				sep = cur[len(cur)-1]
				cur = cur[:len(cur)-1]
			}
			vcn, err := flush(sep.child)
			if err != nil {
				return err
			}
			next = append(next, wentry{ref: sep.ref, key: sep.key, data: sep.data, child: vcn})
			cur, size = nil, 0
			if i == len(level)-1 {
				cur = []wentry{e}
			}
		}
		vcn, err := flush(last)
		if err != nil {
			return err
		}
		level, last = next, vcn
	}
}
