package xfs

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"syscall"
)

// Block-form directories: one directory block holding the entries, the
// hash-sorted leaf array and a tail. The writer does not edit such a
// block in place: it lays the whole block out again from its entries
// (entries packed from the header, one free region, the leaf array),
// which xfs_repair and the kernel take as any other valid layout.

const (
	dbHdr5       = 64 // xfs_dir3_data_hdr
	dbHdr4       = 16 // xfs_dir2_data_hdr
	dbCRC        = 4
	versionBorg  = 0x4000 // ascii-ci: names hash case-folded
	sbVersionNum = 100
)

// blockDir is where a block-form directory's block lies.
type blockDir struct {
	off int64  // on the device
	b   []byte // as read
	dot uint64 // "."'s inode number
}

// hashName is xfs_da_hashname.
func hashName(name string) uint32 {
	var h uint32
	b := []byte(name)
	for ; len(b) >= 4; b = b[4:] {
		h = uint32(b[0])<<21 ^ uint32(b[1])<<14 ^ uint32(b[2])<<7 ^ uint32(b[3]) ^ bits.RotateLeft32(h, 7*4)
	}
	switch len(b) {
	case 3:
		return uint32(b[0])<<14 ^ uint32(b[1])<<7 ^ uint32(b[2]) ^ bits.RotateLeft32(h, 7*3)
	case 2:
		return uint32(b[0])<<7 ^ uint32(b[1]) ^ bits.RotateLeft32(h, 7*2)
	case 1:
		return uint32(b[0]) ^ bits.RotateLeft32(h, 7)
	}
	return h
}

// loadBlockDir decodes a block-form directory into d; leaf and node
// directories (more than one block, in an extent list or a B+tree) are
// loadLeafDir's.
func (f *FS) loadBlockDir(r *rawInode) (*sfDir, error) {
	refuse := func(why string) error {
		return fmt.Errorf("xfs: directory %d %s; offvm changes short-form, block, leaf and node directories only: %w", r.ino, why, syscall.EOPNOTSUPP)
	}
	if be.Uint16(f.w.sb[sbVersionNum:])&versionBorg != 0 {
		return nil, refuse("is on an ascii-ci file system")
	}
	fsbs := uint64(f.sb.dirBlkSize / f.sb.blockSize)
	if r.format() == fmtBtree { // a leaf or node directory in many extents
		return f.loadLeafDir(r)
	}
	if r.size() != f.sb.dirBlkSize || len(r.ex) != 1 || r.ex[0].off != 0 || r.ex[0].count != fsbs || r.ex[0].unwritten {
		return f.loadLeafDir(r)
	}
	off, ok := f.sb.fsbToByte(r.ex[0].start)
	if !ok {
		return nil, fmt.Errorf("xfs: directory %d: block outside the file system: %w", r.ino, ErrCorrupt)
	}
	b := make([]byte, f.sb.dirBlkSize)
	if _, err := f.dev.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("xfs: reading directory %d: %w", r.ino, err)
	}
	count := int(be.Uint32(b[len(b)-8:]))
	end := len(b) - 8 - count*8
	if end < f.dbHdr() {
		return nil, fmt.Errorf("xfs: directory %d block: leaf tail too big: %w", r.ino, ErrCorrupt)
	}
	ents, err := f.dataEntries(r.ino, b, f.magic("XDB3"), end)
	if err != nil {
		return nil, err
	}
	d := &sfDir{isz: 8, block: &blockDir{off: off, b: b}}
	for _, e := range ents {
		switch e.name {
		case ".":
			d.block.dot = e.ino
		case "..":
			d.parent = make([]byte, 10)
			d.setParent(e.ino)
		default:
			d.ents = append(d.ents, e)
		}
	}
	if d.block.dot != r.ino || d.parent == nil {
		return nil, fmt.Errorf("xfs: directory %d block: no \".\" or \"..\" entry: %w", r.ino, ErrCorrupt)
	}
	return d, nil
}

// parentIno is the directory's ".." entry.
func (d *sfDir) parentIno() uint64 {
	if d.isz == 8 {
		return be.Uint64(d.parent[2:]) & (1<<56 - 1)
	}
	return uint64(be.Uint32(d.parent[2:]))
}

func (d *sfDir) setParent(ino uint64) {
	if d.isz == 8 {
		be.PutUint64(d.parent[2:], ino)
	} else {
		be.PutUint32(d.parent[2:], uint32(ino))
	}
}

// encodeBlock lays the block out again and queues it, or refuses when
// the entries no longer fit one block (leaf form is not made).
func (d *sfDir) encodeBlock(f *FS, r *rawInode, t *txn) error {
	bl := d.block
	all := append([]sfEnt{{name: ".", ft: 2, ino: r.ino}, {name: "..", ft: 2, ino: d.parentIno()}}, d.ents...)
	bs := len(bl.b)
	used := f.dbHdr()
	for _, e := range all {
		used += f.dataEntSize(len(e.name))
	}
	leafStart := bs - 8 - len(all)*8
	if used > leafStart {
		return errBlockFull
	}
	b := append([]byte(nil), bl.b...)
	leaves, _ := f.layoutData(b, leafStart, 0, all)
	sort.SliceStable(leaves, func(i, j int) bool { return leaves[i].hash < leaves[j].hash })
	for i, l := range leaves {
		be.PutUint32(b[leafStart+i*8:], l.hash)
		be.PutUint32(b[leafStart+i*8+4:], l.addr)
	}
	be.PutUint32(b[bs-8:], uint32(len(all)))
	be.PutUint32(b[bs-4:], 0)
	t.putCRC(bl.off, b, dbCRC)
	return nil
}

// errBlockFull: a block-form directory outgrew its block (blockToLeaf
// makes it a leaf directory).
var errBlockFull = errors.New("block-form directory outgrows its block")

// blockToLeaf turns a block-form directory that outgrew its block into
// a leaf one, as the kernel's xfs_dir2_block_to_leaf does: the block
// becomes data block 0 and a leaf block is added.
func (o *nsOp) blockToLeaf(r *rawInode, d *sfDir, t *txn) error {
	b := append([]byte(nil), d.block.b...)
	d.leaf = &leafDir{blocks: []*dataBlk{{db: 0, off: d.block.off, b: b}}}
	d.block = nil
	for i := range d.ents {
		d.ents[i].blk = -1
	}
	return o.encodeLeaf(r, d, t)
}

// toBlock turns a short-form directory that outgrew its inode into a
// block-form one: a new directory block, as the kernel does.
func (o *nsOp) toBlock(r *rawInode, d *sfDir, t *txn) error {
	f := o.f
	fsbs := uint64(f.sb.dirBlkSize / f.sb.blockSize)
	start, n, err := o.sp.alloc(0, fsbs, dataOwner(r.ino, 0))
	if err != nil {
		return err
	}
	if n < fsbs {
		return fmt.Errorf("xfs: no %d contiguous free blocks for directory %d's block: %w", fsbs, r.ino, syscall.ENOSPC)
	}
	off, ok := f.sb.fsbToByte(start)
	if !ok {
		return fmt.Errorf("xfs: allocated block %d outside the file system: %w", start, ErrCorrupt)
	}
	b := make([]byte, f.sb.dirBlkSize)
	f.blkHeader(b, "XDB3", off, r)
	parent := d.parentIno()
	d.isz, d.parent = 8, make([]byte, 10)
	d.setParent(parent)
	d.block = &blockDir{off: off, b: b, dot: r.ino}
	if err := d.encodeBlock(f, r, t); err != nil {
		return err
	}
	r.b[5] = fmtExtents
	r.ex = []extent{{off: 0, start: start, count: fsbs}}
	r.remap = true
	be.PutUint64(r.b[diSize:], uint64(f.sb.dirBlkSize))
	be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+fsbs)
	return nil
}
