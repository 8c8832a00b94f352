package ntfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/offvm/offvm/internal/alloc"
)

// errNodeFull says a node's entries do not fit its block or the record.
var errNodeFull = errors.New("index node full")

// wentry is an index entry being edited; child is its left sub-node.
type wentry struct {
	ref   uint64 // $I30: the file reference; view indexes: data offset and length
	key   []byte
	data  []byte // view indexes: placed at the offset ref names
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

// dirW edits one directory's $I30 index (or another index). Its records
// are edited in memory within the op; index blocks and a non-resident
// $BITMAP are written through the op's undo log, so a failed operation
// leaves them as they were.
type dirW struct {
	v         *Volume
	o         *op
	r         *record               // the base record (times, $FILE_NAME parent)
	root      *record               // the record holding $INDEX_ROOT (an extension record in big directories)
	idx       string                // index name: $I30, or $R of $Reparse
	cmp       func(a, b []byte) int // key collation
	blockSize int
	alloc     *dataAttr // $INDEX_ALLOCATION; nil until the index has blocks
	bmp       *dataAttr // $BITMAP of the index
	bits      []byte    // the bitmap's value as being edited
	bitsDirty bool
	pending   map[int64]*wnode // blocks changed by the op, written at its commit
}

func (o *op) openDirW(r *record) (*dirW, error) {
	if r.flags&recIsDir == 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is not a directory: %w", r.num, syscall.ENOTDIR)
	}
	return o.openIndexW(r, "$I30", o.v.collateKeys)
}

// collateKeys orders $FILE_NAME keys by name (COLLATION_FILE_NAME), as
// collateExact does on the decoded names; it reads the names in place, as
// it runs for every entry an insert or a removal passes.
func (v *Volume) collateKeys(a, b []byte) int {
	na, nb := keyUnits(a), keyUnits(b)
	n := min(na, nb)
	u := v.up
	for i := 0; i < n; i++ {
		ca, cb := u.upper(keyUnit(a, i)), u.upper(keyUnit(b, i))
		if ca != cb {
			return cmpInt(int(ca), int(cb))
		}
	}
	if na != nb {
		return cmpInt(na, nb)
	}
	for i := 0; i < n; i++ {
		if ca, cb := keyUnit(a, i), keyUnit(b, i); ca != cb {
			return cmpInt(int(ca), int(cb))
		}
	}
	return 0
}

// keyUnits is how many UTF-16 units of name key k holds (as keyName).
func keyUnits(k []byte) int {
	if len(k) < 0x42 {
		return 0
	}
	return min(int(k[0x40]), (len(k)-0x42)/2)
}

func keyUnit(k []byte, i int) uint16 { return binary.LittleEndian.Uint16(k[0x42+2*i:]) }

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

// rootRecord finds the record of base r's file that holds $INDEX_ROOT idx.
func (o *op) rootRecord(r *record, idx string) (*record, error) {
	if r.findAttr(atIndexRoot, idx, false) >= 0 || r.findAttr(atAttrList, "", false) < 0 {
		return r, nil
	}
	nums, err := o.listRecords(r)
	if err != nil {
		return nil, err
	}
	for _, n := range nums {
		rr, err := o.rec(n)
		if err != nil {
			return nil, err
		}
		if rr.findAttr(atIndexRoot, idx, false) >= 0 {
			return rr, nil
		}
	}
	return r, nil
}

// openIndexW opens index idx of record r for editing, wherever its
// attributes live (base or extension records, resident or not).
func (o *op) openIndexW(r *record, idx string, cmp func(a, b []byte) int) (*dirW, error) {
	v := o.v
	root, err := o.rootRecord(r, idx)
	if err != nil {
		return nil, err
	}
	off := root.findAttr(atIndexRoot, idx, false)
	if off < 0 || root.buf[off+8] != 0 {
		return nil, fmt.Errorf("ntfs: directory %d has no resident $INDEX_ROOT: %w", r.num, syscall.EIO)
	}
	rv := root.residentValue(off)
	if len(rv) < 0x20 {
		return nil, fmt.Errorf("ntfs: directory %d: short $INDEX_ROOT: %w", r.num, syscall.EIO)
	}
	dw := &dirW{v: v, o: o, r: r, root: root, idx: idx, cmp: cmp, blockSize: int(binary.LittleEndian.Uint32(rv[8:])), pending: map[int64]*wnode{}}
	if dw.blockSize < 512 || dw.blockSize > 1<<16 || !pow2(int64(dw.blockSize)) {
		return nil, fmt.Errorf("ntfs: directory %d: index block size %d: %w", r.num, dw.blockSize, syscall.EIO)
	}
	if err := dw.openAttrs(); err != nil {
		return nil, err
	}
	if a := dw.alloc.s; a.resident {
		if len(a.value) > 0 {
			return nil, fmt.Errorf("ntfs: directory %d: resident $INDEX_ALLOCATION: %w", r.num, syscall.EIO)
		}
		dw.alloc = nil // no blocks yet: newBlock makes the attribute
		return dw, nil
	}
	if dw.bits, err = dw.readBits(); err != nil {
		return nil, err
	}
	return dw, nil
}

// openAttrs opens the index's $INDEX_ALLOCATION and $BITMAP; with an
// attribute list, both from one pass over the directory's records.
func (dw *dirW) openAttrs() error {
	o, r, err := dw.o, dw.r, error(nil)
	if r.findAttr(atAttrList, "", false) >= 0 {
		ds, err := o.openSplits(r, dw.idx, atIndexAlloc, atBitmap)
		if err != nil {
			return fmt.Errorf("ntfs: directory %d: $INDEX_ALLOCATION and $BITMAP: %w", r.num, err)
		}
		dw.alloc, dw.bmp = ds[0], ds[1]
		return nil
	}
	if dw.alloc, err = o.openAttr(r, atIndexAlloc, dw.idx); err != nil {
		return fmt.Errorf("ntfs: directory %d: $INDEX_ALLOCATION: %w", r.num, err)
	}
	if dw.bmp, err = o.openAttr(r, atBitmap, dw.idx); err != nil {
		return fmt.Errorf("ntfs: directory %d: index $BITMAP: %w", r.num, err)
	}
	return nil
}

// readBits reads the index bitmap, resident or not; bytes past the
// initialised size read as zero.
func (dw *dirW) readBits() ([]byte, error) {
	s := dw.bmp.s
	if s.resident {
		return append([]byte(nil), s.value...), nil
	}
	if s.dataSize > 1<<24 || s.initSize > s.dataSize {
		return nil, fmt.Errorf("ntfs: directory %d: index $BITMAP of %d bytes: %w", dw.r.num, s.dataSize, syscall.EIO)
	}
	b := make([]byte, s.dataSize)
	if err := dw.v.readRuns(s.runs, b[:s.initSize], 0); err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: index $BITMAP: %w", dw.r.num, err)
	}
	return b, nil
}

// toWNode makes an editable copy of n. Keys and data are shared, not
// copied: no one changes them in place (an edit puts a new slice in the
// entry), so a cached node stays as it was read.
func toWNode(n *indexNode) *wnode {
	w := &wnode{vcn: n.vcn, endChild: -1, entries: make([]wentry, 0, len(n.entries))}
	for _, e := range n.entries {
		if e.flags&ieLast != 0 {
			w.endChild = e.child
			break
		}
		w.entries = append(w.entries, wentry{ref: e.ref, key: e.key, data: e.data, child: e.child})
	}
	return w
}

func (dw *dirW) readNode(vcn int64) (*wnode, error) {
	if vcn < 0 {
		rv := dw.root.residentValue(dw.root.findAttr(atIndexRoot, dw.idx, false))
		// The root's keys would alias the record, which writeNode edits
		// in place: they are copied.
		n, err := parseNode(bytes.Clone(rv[0x10:]), -1, dw.idx == "$I30")
		if err != nil {
			return nil, err
		}
		return toWNode(n), nil
	}
	if dw.alloc == nil {
		return nil, fmt.Errorf("ntfs: directory %d: sub-node without allocation: %w", dw.r.num, syscall.EIO)
	}
	if p := dw.pending[vcn]; p != nil {
		return cloneW(p), nil
	}
	// $I30 blocks as the readers cache them (what the device holds: the
	// op's own changes are in pending until written, and writing a block
	// forgets it). Other indexes share a file ($SII and $SDH) and a key.
	i30 := dw.idx == "$I30"
	if i30 {
		if n := dw.v.cache.getNode(dw.r.num, vcn); n != nil {
			return toWNode(n), nil
		}
	}
	buf := make([]byte, dw.blockSize)
	off := vcn * dw.v.vcnBytes(dw.blockSize)
	if vcn < 0 || off+int64(dw.blockSize) > dw.alloc.s.dataSize {
		return nil, fmt.Errorf("ntfs: directory %d: sub-node %d outside the index: %w", dw.r.num, vcn, syscall.EIO)
	}
	if err := dw.v.readRuns(dw.alloc.s.runs, buf, off); err != nil {
		return nil, err
	}
	if err := applyFixup(buf, "INDX"); err != nil {
		return nil, err
	}
	n, err := parseNode(buf[0x18:], vcn, i30)
	if err != nil {
		return nil, err
	}
	if i30 {
		dw.v.cache.putNode(dw.r.num, n)
	}
	return toWNode(n), nil
}

// entrySize is the serialised length of one index entry.
func entrySize(ref uint64, key, data []byte, child int64) int {
	l := 0x10 + align8(len(key))
	if len(data) > 0 {
		l = align8(max(0x10+len(key), int(ref&0xffff)+len(data)))
	}
	if child >= 0 {
		l += 8
	}
	return l
}

// entriesSize is the length of a node's entries and its last entry.
func entriesSize(n *wnode) int {
	total := entrySize(0, nil, nil, n.endChild)
	for _, e := range n.entries {
		total += entrySize(e.ref, e.key, e.data, e.child)
	}
	return total
}

// entriesBytes serialises a node's entries and its last entry.
func entriesBytes(n *wnode) []byte {
	return appendEntries(make([]byte, 0, entriesSize(n)), n)
}

// appendEntries serialises a node's entries and its last entry after
// out: a block is written in one buffer.
func appendEntries(out []byte, n *wnode) []byte {
	add := func(ref uint64, key, data []byte, child int64, last bool) {
		l := entrySize(ref, key, data, child)
		out = append(out, make([]byte, l)...)
		b := out[len(out)-l:]
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
		if len(data) > 0 {
			copy(b[ref&0xffff:], data)
		}
	}
	for _, e := range n.entries {
		add(e.ref, e.key, e.data, e.child, false)
	}
	add(0, nil, nil, n.endChild, true)
	return out
}

// writeNode stores a node: the root into the record, a block to disk.
// errNodeFull when it does not fit.
func (dw *dirW) writeNode(n *wnode) error {
	if n.vcn >= 0 { // serialised at the op's commit (blockBytes)
		if align8(0x28+2*(dw.blockSize/fixupStride+1))+entriesSize(n) > dw.blockSize {
			return errNodeFull
		}
		dw.pending[n.vcn] = cloneW(n)
		return nil
	}
	// the root, into its record
	size := entriesSize(n)
	off := dw.root.findAttr(atIndexRoot, dw.idx, false)
	old := dw.root.residentValue(off)
	val := make([]byte, 0x20, 0x20+size) // the root's header, the node's, then the entries
	copy(val, old[:0x10])
	val = appendEntries(val, n)
	binary.LittleEndian.PutUint32(val[0x10:], 0x10)
	binary.LittleEndian.PutUint32(val[0x14:], uint32(0x10+size))
	binary.LittleEndian.PutUint32(val[0x18:], uint32(0x10+size))
	if !n.leaf() {
		val[0x1c] = 1
	}
	// A small root leaves the record room for the allocation's runlist.
	if len(val) > dw.v.geo.recordSize/2 || dw.root.replaceAttr(off, residentAttr(atIndexRoot, dw.idx, val)) != nil {
		return errNodeFull
	}
	dw.o.add(dw.root)
	return nil
}

// toIndexNode is the parsed form of a $I30 node as blockBytes writes it,
// for the readers' cache. Its names are decoded into one buffer; its keys
// are shared with the op's nodes, as toWNode shares the cached ones: no
// one changes a key in place (an edit puts a new slice in the entry, and
// every key an op inserts is its own copy), and the op ends at its commit.
func toIndexNode(w *wnode) *indexNode {
	units := 0
	for _, e := range w.entries {
		units += keyUnits(e.key)
	}
	names := make([]uint16, 0, units)
	n := &indexNode{vcn: w.vcn, leaf: w.leaf(), entries: make([]indexEntry, 0, len(w.entries)+1)}
	for _, e := range w.entries {
		ie := indexEntry{ref: e.ref, key: e.key, child: e.child}
		if e.child >= 0 {
			ie.flags = ieSubnode
		}
		nl := keyUnits(e.key)
		for i := 0; i < nl; i++ {
			names = append(names, keyUnit(e.key, i))
		}
		ie.name = names[len(names)-nl : len(names) : len(names)]
		if len(e.key) > 0x41 {
			ie.ns = e.key[0x41]
		}
		n.entries = append(n.entries, ie)
	}
	last := indexEntry{flags: ieLast, child: w.endChild}
	if w.endChild >= 0 {
		last.flags |= ieSubnode
	}
	n.entries = append(n.entries, last)
	return n
}

func cloneW(n *wnode) *wnode {
	c := *n
	c.entries = append([]wentry(nil), n.entries...)
	return &c
}

// blockBytes serialises a block node as an INDX record.
func (dw *dirW) blockBytes(n *wnode) ([]byte, error) {
	var flags byte
	if !n.leaf() {
		flags = 1
	}
	bs := dw.blockSize
	count := bs/fixupStride + 1
	first := align8(0x28 + 2*count)
	size := entriesSize(n)
	if first+size > bs {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d overflows: %w", dw.r.num, n.vcn, syscall.EIO)
	}
	scratch := dw.v.w.blockScratch
	if cap(scratch) < bs {
		scratch = make([]byte, bs)
	}
	scratch = scratch[:first]
	clear(scratch[:cap(scratch)][:bs])
	// past the entries: zeros; the block is written at once and not kept
	// (flushNodes), so the next one reuses its memory
	buf := appendEntries(scratch, n)[:bs]
	dw.v.w.blockScratch = buf
	copy(buf, "INDX")
	binary.LittleEndian.PutUint16(buf[4:], 0x28)
	binary.LittleEndian.PutUint16(buf[6:], uint16(count))
	binary.LittleEndian.PutUint64(buf[0x10:], uint64(n.vcn))
	binary.LittleEndian.PutUint32(buf[0x18:], uint32(first-0x18))
	binary.LittleEndian.PutUint32(buf[0x1c:], uint32(first-0x18+size))
	binary.LittleEndian.PutUint32(buf[0x20:], uint32(bs-0x18))
	buf[0x24] = flags
	protectFixup(buf)
	return buf, nil
}

// flushNodes writes the blocks the op changed, in VCN order.
func (dw *dirW) flushNodes() error {
	vcns := make([]int64, 0, len(dw.pending))
	for vcn := range dw.pending {
		vcns = append(vcns, vcn)
	}
	slices.Sort(vcns)
	for _, vcn := range vcns {
		buf, err := dw.blockBytes(dw.pending[vcn])
		if err != nil {
			return err
		}
		dw.v.cache.forgetNode(dw.r.num, vcn)
		if err := dw.v.writeRuns(dw.alloc.s.runs, buf, vcn*dw.v.vcnBytes(dw.blockSize)); err != nil {
			return err
		}
		if dw.idx == "$I30" {
			// What the device now holds, parsed: the next op in a big
			// directory walks the same leaf (a failed op purges it).
			dw.v.cache.putNode(dw.r.num, toIndexNode(dw.pending[vcn]))
		}
	}
	clear(dw.pending)
	return nil
}

// newBlock takes a free index block, growing $INDEX_ALLOCATION if needed.
func (dw *dirW) newBlock() (int64, error) {
	v, bs := dw.v, int64(dw.blockSize)
	if dw.alloc == nil {
		d, err := dw.o.openAttr(dw.r, atIndexAlloc, dw.idx)
		if err != nil {
			return 0, err
		}
		d.s = &stream{typ: atIndexAlloc, name: dw.idx}
		dw.alloc, dw.bits = d, make([]byte, 8)
	}
	a := dw.alloc.s
	nblocks := a.dataSize / bs
	if i := alloc.Bitmap(dw.bits).NextClear(0, min(nblocks, int64(len(dw.bits))*8)); i >= 0 {
		alloc.Bitmap(dw.bits).Put(i, true)
		dw.bitsDirty = true
		return i * bs / v.vcnBytes(dw.blockSize), nil
	}
	i := nblocks
	a.dataSize += bs
	a.initSize = a.dataSize
	if a.dataSize > a.allocSize {
		cs := v.geo.clusterSize
		need := (a.dataSize - a.allocSize + cs - 1) / cs
		runs, err := v.allocClusters(need, a.allocSize/cs)
		if err != nil {
			return 0, err
		}
		a.runs = mergeRuns(append(a.runs, runs...))
		a.allocSize += need * cs
	}
	for int64(len(dw.bits))*8 <= i {
		dw.bits = append(dw.bits, make([]byte, 8)...)
	}
	alloc.Bitmap(dw.bits).Put(i, true)
	dw.bitsDirty = true
	return i * bs / v.vcnBytes(dw.blockSize), dw.saveAlloc()
}

// freeBlock clears a block's bit; the clusters stay with the index.
func (dw *dirW) freeBlock(vcn int64) {
	i := vcn * dw.v.vcnBytes(dw.blockSize) / int64(dw.blockSize)
	if i/8 < int64(len(dw.bits)) {
		alloc.Bitmap(dw.bits).Put(i, false)
		dw.bitsDirty = true
	}
	delete(dw.pending, vcn)
}

// saveAlloc stores $INDEX_ALLOCATION's runs and sizes into its records.
func (dw *dirW) saveAlloc() error {
	if dw.alloc == nil {
		return nil
	}
	dw.o.mark(dw.r)
	dw.alloc.relocate()
	return dw.v.saveData(dw.alloc)
}

// saveBits stores the index bitmap: resident while it fits (as Windows
// keeps small ones), else in clusters, grown a cluster at a time.
func (dw *dirW) saveBits() error {
	if !dw.bitsDirty || dw.alloc == nil {
		return nil
	}
	dw.bitsDirty = false
	v, s := dw.v, dw.bmp.s
	dw.o.mark(dw.r)
	dw.bmp.relocate()
	if s.resident {
		old := s.value
		s.value, s.dataSize, s.initSize = append([]byte(nil), dw.bits...), int64(len(dw.bits)), int64(len(dw.bits))
		err := v.saveData(dw.bmp)
		var full *recordFullError
		if !errors.As(err, &full) {
			return err
		}
		s.value, s.dataSize, s.initSize = old, int64(len(old)), int64(len(old))
		dw.bmp.s = &stream{typ: atBitmap, name: dw.idx}
		s = dw.bmp.s
	}
	cs := v.geo.clusterSize
	if n := int64(len(dw.bits)); n > s.allocSize {
		need := (n - s.allocSize + cs - 1) / cs
		runs, err := v.allocClusters(need, s.allocSize/cs)
		if err != nil {
			return err
		}
		s.runs = mergeRuns(append(s.runs, runs...))
		s.allocSize += need * cs
	}
	buf := make([]byte, s.allocSize)
	copy(buf, dw.bits)
	if err := v.writeRuns(s.runs, buf, 0); err != nil {
		return fmt.Errorf("ntfs: directory %d: writing index $BITMAP: %w", dw.r.num, err)
	}
	if n := int64(len(dw.bits)); s.dataSize == n && s.initSize == n {
		return nil // only bits changed: the attribute stays as it is
	}
	s.dataSize, s.initSize = int64(len(dw.bits)), int64(len(dw.bits))
	return v.saveData(dw.bmp)
}
