package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// Attributes that do not fit the inode go into one attribute leaf block
// (xfs_attr3_leaf: entries sorted by name hash, names and values packed
// down from the block's end), values too big for the leaf in remote
// value blocks of their own (an XARM header each), as the kernel's
// xfs_attr_leaf_addname lays them out. The writer lays the leaf and the
// remote values out again whole on each change, in newly allocated
// blocks, the old ones freed; when the attributes fit the inode again
// they go back to short form, as the kernel's xfs_attr3_leaf_to_shortform
// does; more than one leaf go under a node tree of as many levels as
// they need.

// attrBlockCRC is where a v5 leaf's da3_blkinfo and a remote block's
// header alike keep their CRC.
const attrBlockCRC = 12

// blockAttrs reads the attributes of r's leaf or node attribute fork,
// with their namespace flags, and the fork's extents.
func (f *FS) blockAttrs(r *rawInode) ([]sfAttr, []extent, error) {
	in, ex, err := f.attrForkExtents(r)
	if err != nil || len(ex) == 0 {
		return nil, ex, err
	}
	var out []sfAttr
	err = f.eachAttrLeaf(ex, func(b []byte, blk uint32) error {
		al := f.attrLay()
		if be.Uint16(b[8:]) != al.leaf {
			return fmt.Errorf("attribute block %d is not a leaf: %w", blk, ErrCorrupt)
		}
		cnt := int(be.Uint16(b[al.info:]))
		if al.leafHdr+cnt*8 > len(b) {
			return fmt.Errorf("attribute leaf %d of %d entries: %w", blk, cnt, ErrCorrupt)
		}
		for i := 0; i < cnt; i++ {
			a, err := f.leafAttr(in, ex, b, i)
			if err != nil {
				return fmt.Errorf("attribute leaf %d entry %d: %w", blk, i, err)
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("xfs: inode %d: %w", r.ino, err)
	}
	return out, ex, nil
}

// attrForkExtents is the extents of r's attribute fork, as read.
func (f *FS) attrForkExtents(r *rawInode) (*inode, []extent, error) {
	in, err := f.readInode(r.ino)
	if err != nil {
		return nil, nil, err
	}
	ex, err := f.attrExtents(in)
	return in, ex, err
}

// leafAttr decodes entry i of leaf b, reading a remote value.
func (f *FS) leafAttr(in *inode, ex []extent, b []byte, i int) (sfAttr, error) {
	hdr := f.attrLay().leafHdr
	e := b[hdr+i*8:]
	idx, fl := int(be.Uint16(e[4:])), e[6]
	if idx < hdr || idx+12 > len(b) || fl&attrIncomp != 0 {
		return sfAttr{}, fmt.Errorf("at %d, flags %#x: %w", idx, fl, ErrCorrupt)
	}
	v := b[idx:]
	if fl&attrLocal != 0 {
		vl, nl := int(be.Uint16(v)), int(v[2])
		if idx+3+nl+vl > len(b) {
			return sfAttr{}, ErrCorrupt
		}
		return sfAttr{fl &^ attrLocal, clone(v[3 : 3+nl]), clone(v[3+nl : 3+nl+vl])}, nil
	}
	vblk, vl, nl := be.Uint32(v), int(be.Uint32(v[4:])), int(v[8])
	if idx+9+nl > len(b) || vl > 1<<16 {
		return sfAttr{}, ErrCorrupt
	}
	val, err := f.remoteValue(in, ex, vblk, vl)
	if err != nil {
		return sfAttr{}, err
	}
	return sfAttr{fl, clone(v[9 : 9+nl]), val}, nil
}

// localMax is the largest entry the kernel keeps in the leaf (3/4 of
// the block, xfs_attr_leaf_entsize_local_max); bigger values are remote.
func (f *FS) localMax() int { return int(f.sb.blockSize)/2 + int(f.sb.blockSize)/4 }

func localEntSize(a sfAttr) int  { return (3 + len(a.name) + len(a.value) + 3) &^ 3 }
func remoteEntSize(a sfAttr) int { return (11 + len(a.name) + 3) &^ 3 } // as xfs_db reads the kernel's

// attrLayout is the blocks of an attribute fork laid out again: the
// leaf, or the node and its leaves, first (da blocks), then each remote
// value's blocks.
type attrLayout struct {
	blocks [][]byte // by attribute fork block number
	da     int      // how many of them are leaf and node blocks
}

// attrEntSize is the bytes entry a takes in a leaf, and whether its
// value is remote.
func (f *FS) attrEntSize(a sfAttr) (int, bool) {
	if size := localEntSize(a); size < f.localMax() {
		return size, false
	}
	return remoteEntSize(a), true
}

// splitLeaves cuts as (in hash order) into the runs that fill leaves.
func (f *FS) splitLeaves(as []sfAttr) [][]sfAttr {
	var out [][]sfAttr
	room := 0
	for i, a := range as {
		size, _ := f.attrEntSize(a)
		if len(out) == 0 || room < size+8 {
			out = append(out, nil)
			room = int(f.sb.blockSize) - f.attrLay().leafHdr
		}
		out[len(out)-1] = append(out[len(out)-1], as[i])
		room -= size + 8
	}
	return out
}

// layoutLeaf builds the blocks for as (their disk addresses are filled
// in when they are allocated): one leaf when they fit, else a node tree
// over leaves in hash order: the root at block 0, the levels below it
// (when one node cannot name every leaf) after it, then the leaves;
// every level linked to its siblings, as the kernel's
// xfs_attr3_leaf_to_node and node splits leave them.
func (f *FS) layoutLeaf(r *rawInode, as []sfAttr) (*attrLayout, error) {
	bs := int(f.sb.blockSize)
	sort.SliceStable(as, func(i, j int) bool { return hashName(string(as[i].name)) < hashName(string(as[j].name)) })
	runs := f.splitLeaves(as)
	if len(runs) == 0 {
		runs = [][]sfAttr{nil}
	}
	al := f.attrLay()
	per := (bs - al.nodeHdr) / 8
	var shape []int // node blocks per level, from the one above the leaves to the root
	for n := len(runs); n > 1; {
		n = (n + per - 1) / per
		shape = append(shape, n)
	}
	if len(shape) >= attrMaxDepth {
		return nil, fmt.Errorf("xfs: inode %d: %d attributes need an attribute tree of %d levels: %w", r.ino, len(as), len(shape)+1, syscall.EOPNOTSUPP)
	}
	nodes := 0
	for _, n := range shape {
		nodes += n
	}
	l := &attrLayout{da: nodes + len(runs)}
	for range l.da {
		l.blocks = append(l.blocks, make([]byte, bs))
	}
	kids := make([]daKid, len(runs))
	for k, run := range runs {
		f.fillLeaf(r, l, l.blocks[nodes+k], run)
		if len(run) > 0 {
			kids[k] = daKid{uint32(nodes + k), hashName(string(run[len(run)-1].name))}
		}
	}
	if nodes > 0 {
		linkSiblings(l.blocks[nodes:l.da], uint32(nodes))
	}
	start := nodes
	for lv, cnt := range shape {
		start -= cnt
		var up []daKid
		pos := 0
		for i, c := range spreadEven(len(kids), cnt) {
			node := l.blocks[start+i]
			be.PutUint16(node[8:], al.node)
			if f.v5() {
				copy(node[32:48], r.uuid())
				be.PutUint64(node[48:], r.ino)
			}
			be.PutUint16(node[al.info:], uint16(c))
			be.PutUint16(node[al.info+2:], uint16(lv+1))
			for k, kid := range kids[pos : pos+c] {
				e := node[al.nodeHdr+k*8:]
				be.PutUint32(e, kid.hash)
				be.PutUint32(e[4:], kid.blk)
			}
			up = append(up, daKid{uint32(start + i), kids[pos+c-1].hash})
			pos += c
		}
		linkSiblings(l.blocks[start:start+cnt], uint32(start))
		kids = up
	}
	return l, nil
}

// attrMaxDepth is XFS_DA_NODE_MAXDEPTH: levels of a tree, leaves included.
const attrMaxDepth = 5

// daKid is a child of an attribute node: its block and largest hash.
type daKid struct{ blk, hash uint32 }

// linkSiblings sets the forward and back links of a level's blocks,
// numbered from first on.
func linkSiblings(level [][]byte, first uint32) {
	for i, b := range level {
		if i+1 < len(level) {
			be.PutUint32(b, first+uint32(i)+1)
		}
		if i > 0 {
			be.PutUint32(b[4:], first+uint32(i)-1)
		}
	}
}

// fillLeaf lays the entries of as out in leaf, their remote values in
// new blocks at l's end.
func (f *FS) fillLeaf(r *rawInode, l *attrLayout, leaf []byte, as []sfAttr) {
	bs := int(f.sb.blockSize)
	al := f.attrLay()
	per := bs - al.rmtHdr
	used, top := 0, bs
	for i, a := range as {
		size, remote := f.attrEntSize(a)
		top -= size
		used += size
		e := leaf[al.leafHdr+i*8:]
		be.PutUint32(e, hashName(string(a.name)))
		be.PutUint16(e[4:], uint16(top))
		v := leaf[top:]
		if !remote {
			e[6] = a.flags | attrLocal
			be.PutUint16(v, uint16(len(a.value)))
			v[2] = byte(len(a.name))
			copy(v[3:], a.name)
			copy(v[3+len(a.name):], a.value)
			continue
		}
		e[6] = a.flags
		be.PutUint32(v, uint32(len(l.blocks)))
		be.PutUint32(v[4:], uint32(len(a.value)))
		v[8] = byte(len(a.name))
		copy(v[9:], a.name)
		for off := 0; off < len(a.value) || off == 0; off += per {
			b := make([]byte, bs)
			part := a.value[off:min(len(a.value), off+per)]
			if f.v5() {
				copy(b, "XARM")
				be.PutUint32(b[4:], uint32(off))
				be.PutUint32(b[8:], uint32(len(part)))
				copy(b[16:32], r.uuid())
				be.PutUint64(b[32:], r.ino)
			}
			copy(b[al.rmtHdr:], part)
			l.blocks = append(l.blocks, b)
		}
	}
	be.PutUint16(leaf[8:], al.leaf)
	if f.v5() {
		copy(leaf[32:48], r.uuid())
		be.PutUint64(leaf[48:], r.ino)
	}
	be.PutUint16(leaf[al.info:], uint16(len(as)))
	be.PutUint16(leaf[al.info+2:], uint16(used))
	be.PutUint16(leaf[al.info+4:], uint16(top))
	base := al.leafHdr + len(as)*8
	be.PutUint16(leaf[al.info+8:], uint16(base)) // the free map's first region
	be.PutUint16(leaf[al.info+10:], uint16(top-base))
}

// putLeafAttrs allocates blocks for l, maps them in r's attribute fork
// (moving di_forkoff when the extents need room) and queues the blocks.
func (f *FS) putLeafAttrs(r *rawInode, l *attrLayout, sp *space, t *txn) error {
	var ex []extent
	for got := uint64(0); got < uint64(len(l.blocks)); {
		start, n, err := sp.alloc(0, uint64(len(l.blocks))-got, attrOwner(r.ino, got))
		if err != nil {
			return err
		}
		ex = append(ex, extent{off: got, start: start, count: n})
		got += n
	}
	lit := r.b[r.core():]
	need, err := r.dataNeed()
	if err != nil {
		return err
	}
	fo := int(r.b[diForkoff]) * 8
	if fo == 0 || len(lit)-fo < len(ex)*16 {
		fo = (len(lit) - len(ex)*16) &^ 7
		if r.format() == fmtDev {
			fo = 8 // as in putAttrs
		}
	}
	format := uint8(fmtExtents)
	if fo < need || fo <= 0 { // too many extents: a B+tree in the largest fork the data leaves
		fo, format = max((need+7)&^7, 8), fmtBtree
		if r.format() == fmtDev {
			fo = 8
		}
		if fo <= 0 || len(lit)-fo < bmdrHdr+16 {
			return fmt.Errorf("xfs: inode %d: no room for an attribute fork beside its data: %w", r.ino, syscall.EOPNOTSUPP)
		}
	}
	clear(lit[need:])
	if format == fmtBtree {
		blocks, err := f.treeBlocks(sp, nil, ex, len(lit)-fo, attrBmbtOwner(r.ino))
		if err != nil {
			return err
		}
		f.putTree(r, t, blocks, ex, lit[fo:])
		r.abmbt = blocks
		be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+uint64(len(blocks)))
	}
	for i, e := range ex {
		if format == fmtExtents {
			encodeExtent(lit[fo+i*16:], e)
		}
		for k := uint64(0); k < e.count; k++ {
			b := l.blocks[e.off+k]
			dev, ok := f.sb.fsbToByte(e.start + k)
			if !ok {
				return fmt.Errorf("xfs: allocated block %d outside the file system: %w", e.start+k, ErrCorrupt)
			}
			addr := 16 // a leaf's or node's da3_blkinfo blkno
			if e.off+k >= uint64(l.da) {
				addr = 40 // a remote block's rm_blkno
			}
			if f.v5() {
				be.PutUint64(b[addr:], uint64(dev/512))
			}
			t.putCRC(dev, b, attrBlockCRC)
		}
	}
	r.b[diForkoff], r.b[diAformat] = byte(fo/8), format
	r.putAnextents(uint64(len(ex)))
	be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+uint64(len(l.blocks)))
	return nil
}

// freeAttrBlocks gives the attribute fork's blocks back, its B+tree's
// included.
func (r *rawInode) freeAttrBlocks(ex []extent, sp *space) error {
	for _, b := range r.abmbt {
		if err := sp.free(b, 1, attrBmbtOwner(r.ino)); err != nil {
			return err
		}
		be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])-1)
	}
	r.abmbt = nil
	for _, e := range ex {
		if err := sp.free(e.start, e.count, attrOwner(r.ino, e.off)); err != nil {
			return err
		}
		be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])-e.count)
	}
	r.putAnextents(0)
	return nil
}

func (r *rawInode) putAnextents(n uint64) {
	if r.flags2()&flags2Nrext64 != 0 {
		be.PutUint32(r.b[diBigAnext:], uint32(n))
	} else {
		be.PutUint16(r.b[diAnextents:], uint16(n))
	}
}
