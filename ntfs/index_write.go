package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// errNodeFull says a node's entries do not fit its block or the record.
var errNodeFull = errors.New("index node full")

// wentry is an index entry being edited; child is its left sub-node.
type wentry struct {
	ref   uint64
	key   []byte
	child int64
}

// wnode is an index node being edited; endChild is the sub-node of its
// last (key-less) entry.
type wnode struct {
	vcn      int64 // -1: the root in $INDEX_ROOT
	entries  []wentry
	endChild int64
}

func (n *wnode) childAt(i int) int64 {
	if i < len(n.entries) {
		return n.entries[i].child
	}
	return n.endChild
}

func (n *wnode) leaf() bool {
	if n.endChild >= 0 {
		return false
	}
	for _, e := range n.entries {
		if e.child >= 0 {
			return false
		}
	}
	return true
}

// dirW edits one directory's $I30 index; the directory's base record is
// changed in memory and written by the caller.
type dirW struct {
	v         *Volume
	r         *record
	idx       string                // index name: $I30, or $R of $Reparse
	cmp       func(a, b []byte) int // key collation
	blockSize int
	alloc     *stream // nil until the index has blocks
	bits      []byte  // $BITMAP:$I30
}

func (v *Volume) openDirW(r *record) (*dirW, error) {
	if r.flags&recIsDir == 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is not a directory: %w", r.num, syscall.ENOTDIR)
	}
	return v.openIndexW(r, "$I30", v.collateKeys)
}

// collateKeys orders $FILE_NAME keys by name (COLLATION_FILE_NAME).
func (v *Volume) collateKeys(a, b []byte) int {
	return v.up.collateExact(keyName(a), keyName(b))
}

func keyName(k []byte) []uint16 {
	if len(k) < 0x42 {
		return nil
	}
	n := min(int(k[0x40]), (len(k)-0x42)/2)
	u := make([]uint16, n)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(k[0x42+2*i:])
	}
	return u
}

// openIndexW opens index idx of record r for editing.
func (v *Volume) openIndexW(r *record, idx string, cmp func(a, b []byte) int) (*dirW, error) {
	off := r.findAttr(atIndexRoot, idx, false)
	if off < 0 {
		return nil, fmt.Errorf("ntfs: directory %d has no $INDEX_ROOT in its base record: %w", r.num, syscall.EOPNOTSUPP)
	}
	rv := r.residentValue(off)
	if len(rv) < 0x20 {
		return nil, fmt.Errorf("ntfs: directory %d: short $INDEX_ROOT: %w", r.num, syscall.EIO)
	}
	dw := &dirW{v: v, r: r, idx: idx, cmp: cmp, blockSize: int(binary.LittleEndian.Uint32(rv[8:]))}
	if ao := r.findAttr(atIndexAlloc, idx, false); ao >= 0 {
		a, err := parseAttr(r.buf[ao:r.used], v.clusters)
		if err != nil || a.resident || a.startVCN != 0 || (a.lastVCN+1)*v.geo.clusterSize != a.allocSize {
			return nil, fmt.Errorf("ntfs: directory %d: index allocation spans several records; not supported: %w", r.num, syscall.EOPNOTSUPP)
		}
		dw.alloc = &stream{typ: atIndexAlloc, name: idx, runs: a.runs, dataSize: a.dataSize, initSize: a.initSize, allocSize: a.allocSize}
		bo := r.findAttr(atBitmap, idx, false)
		if bo < 0 || r.buf[bo+8] != 0 {
			return nil, fmt.Errorf("ntfs: directory %d: index bitmap missing or non-resident: %w", r.num, syscall.EOPNOTSUPP)
		}
		dw.bits = append([]byte(nil), r.residentValue(bo)...)
	} else if r.findAttr(atAttrList, "", false) >= 0 {
		return nil, fmt.Errorf("ntfs: directory %d has an attribute list; not supported: %w", r.num, syscall.EOPNOTSUPP)
	}
	return dw, nil
}

func toWNode(n *indexNode) *wnode {
	w := &wnode{vcn: n.vcn, endChild: -1}
	for _, e := range n.entries {
		if e.flags&ieLast != 0 {
			w.endChild = e.child
			break
		}
		w.entries = append(w.entries, wentry{ref: e.ref, key: append([]byte(nil), e.key...), child: e.child})
	}
	return w
}

func (dw *dirW) readNode(vcn int64) (*wnode, error) {
	if vcn < 0 {
		rv := dw.r.residentValue(dw.r.findAttr(atIndexRoot, dw.idx, false))
		n, err := parseNode(rv[0x10:], -1, dw.idx == "$I30")
		if err != nil {
			return nil, err
		}
		return toWNode(n), nil
	}
	if dw.alloc == nil {
		return nil, fmt.Errorf("ntfs: directory %d: sub-node without allocation: %w", dw.r.num, syscall.EIO)
	}
	buf := make([]byte, dw.blockSize)
	off := vcn * dw.v.vcnBytes(dw.blockSize)
	if off+int64(dw.blockSize) > dw.alloc.dataSize {
		return nil, fmt.Errorf("ntfs: directory %d: sub-node %d outside the index: %w", dw.r.num, vcn, syscall.EIO)
	}
	if err := dw.v.readRuns(dw.alloc.runs, buf, off); err != nil {
		return nil, err
	}
	if err := applyFixup(buf, "INDX"); err != nil {
		return nil, err
	}
	n, err := parseNode(buf[0x18:], vcn, dw.idx == "$I30")
	if err != nil {
		return nil, err
	}
	return toWNode(n), nil
}

// entriesBytes serialises a node's entries and its last entry.
func entriesBytes(n *wnode) []byte {
	var out []byte
	add := func(ref uint64, key []byte, child int64, last bool) {
		l := 0x10 + align8(len(key))
		if child >= 0 {
			l += 8
		}
		b := make([]byte, l)
		binary.LittleEndian.PutUint64(b, ref)
		binary.LittleEndian.PutUint16(b[8:], uint16(l))
		binary.LittleEndian.PutUint16(b[10:], uint16(len(key)))
		var fl uint16
		if child >= 0 {
			fl |= ieSubnode
			binary.LittleEndian.PutUint64(b[l-8:], uint64(child))
		}
		if last {
			fl |= ieLast
		}
		binary.LittleEndian.PutUint16(b[12:], fl)
		copy(b[0x10:], key)
		out = append(out, b...)
	}
	for _, e := range n.entries {
		add(e.ref, e.key, e.child, false)
	}
	add(0, nil, n.endChild, true)
	return out
}

// writeNode stores a node: the root into the record, a block to disk.
// errNodeFull when it does not fit.
func (dw *dirW) writeNode(n *wnode) error {
	eb := entriesBytes(n)
	var flags byte
	if !n.leaf() {
		flags = 1
	}
	if n.vcn < 0 {
		off := dw.r.findAttr(atIndexRoot, dw.idx, false)
		old := dw.r.residentValue(off)
		val := make([]byte, 0x20+len(eb))
		copy(val, old[:0x10])
		binary.LittleEndian.PutUint32(val[0x10:], 0x10)
		binary.LittleEndian.PutUint32(val[0x14:], uint32(0x10+len(eb)))
		binary.LittleEndian.PutUint32(val[0x18:], uint32(0x10+len(eb)))
		val[0x1c] = flags
		copy(val[0x20:], eb)
		// A small root leaves the record room for the allocation's runlist.
		if len(val) > dw.v.geo.recordSize/2 || dw.r.replaceAttr(off, residentAttr(atIndexRoot, dw.idx, val)) != nil {
			return errNodeFull
		}
		return nil
	}
	bs := dw.blockSize
	count := bs/fixupStride + 1
	first := align8(0x28 + 2*count)
	if first+len(eb) > bs {
		return errNodeFull
	}
	buf := make([]byte, bs)
	copy(buf, "INDX")
	binary.LittleEndian.PutUint16(buf[4:], 0x28)
	binary.LittleEndian.PutUint16(buf[6:], uint16(count))
	binary.LittleEndian.PutUint64(buf[0x10:], uint64(n.vcn))
	binary.LittleEndian.PutUint32(buf[0x18:], uint32(first-0x18))
	binary.LittleEndian.PutUint32(buf[0x1c:], uint32(first-0x18+len(eb)))
	binary.LittleEndian.PutUint32(buf[0x20:], uint32(bs-0x18))
	buf[0x24] = flags
	copy(buf[first:], eb)
	protectFixup(buf)
	dw.v.endWrite()
	return dw.v.writeRuns(dw.alloc.runs, buf, n.vcn*dw.v.vcnBytes(bs))
}

// newBlock takes a free index block, growing $INDEX_ALLOCATION if needed.
func (dw *dirW) newBlock() (int64, error) {
	v, bs := dw.v, int64(dw.blockSize)
	if dw.alloc == nil {
		dw.alloc = &stream{typ: atIndexAlloc, name: dw.idx}
		dw.bits = make([]byte, 8)
		if _, err := dw.r.insertAttr(nonResidentAttr(atIndexAlloc, dw.idx, 0, dw.alloc, v.geo.clusterSize)); err != nil {
			return 0, err
		}
		if _, err := dw.r.insertAttr(residentAttr(atBitmap, dw.idx, dw.bits)); err != nil {
			return 0, err
		}
	}
	nblocks := dw.alloc.dataSize / bs
	for i := int64(0); i < nblocks && i/8 < int64(len(dw.bits)); i++ {
		if dw.bits[i/8]&(1<<(i%8)) == 0 {
			dw.bits[i/8] |= 1 << (i % 8)
			return i * bs / v.vcnBytes(dw.blockSize), dw.saveAlloc()
		}
	}
	i := nblocks
	dw.alloc.dataSize += bs
	dw.alloc.initSize = dw.alloc.dataSize
	if dw.alloc.dataSize > dw.alloc.allocSize {
		cs := v.geo.clusterSize
		need := (dw.alloc.dataSize - dw.alloc.allocSize + cs - 1) / cs
		runs, err := v.allocClusters(need, dw.alloc.allocSize/cs)
		if err != nil {
			return 0, err
		}
		dw.alloc.runs = mergeRuns(append(dw.alloc.runs, runs...))
		dw.alloc.allocSize += need * cs
	}
	for int64(len(dw.bits))*8 <= i {
		dw.bits = append(dw.bits, make([]byte, 8)...)
	}
	dw.bits[i/8] |= 1 << (i % 8)
	return i * bs / v.vcnBytes(dw.blockSize), dw.saveAlloc()
}

// freeBlock clears a block's bit; the clusters stay with the index.
func (dw *dirW) freeBlock(vcn int64) {
	i := vcn * dw.v.vcnBytes(dw.blockSize) / int64(dw.blockSize)
	if i/8 < int64(len(dw.bits)) {
		dw.bits[i/8] &^= 1 << (i % 8)
	}
}

// saveAlloc stores $INDEX_ALLOCATION and $BITMAP into the record.
func (dw *dirW) saveAlloc() error {
	if dw.alloc == nil {
		return nil
	}
	ao := dw.r.findAttr(atIndexAlloc, dw.idx, false)
	if err := dw.r.replaceAttr(ao, nonResidentAttr(atIndexAlloc, dw.idx, 0, dw.alloc, dw.v.geo.clusterSize)); err != nil {
		return err
	}
	bo := dw.r.findAttr(atBitmap, dw.idx, false)
	return dw.r.replaceAttr(bo, residentAttr(atBitmap, dw.idx, dw.bits))
}
