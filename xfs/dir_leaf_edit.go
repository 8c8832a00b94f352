package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// Leaf- and node-form directories: data blocks below leafOffset; above
// it either one leaf block (hash-sorted pointers to every entry, and
// each data block's largest free region) or, when that does not fit, a
// node: a DA3N root at leafOffset over LEAFN leaves, with the free
// regions in free-index blocks at freeOffset. A changed directory has
// its changed data blocks laid out again (entries packed, one free
// region), new data blocks added when the entries no longer fit, and
// everything above leafOffset rebuilt from the data blocks; blocks the
// new layout no longer needs are freed. xfs_repair and the kernel take
// this as any other valid layout.

const (
	leafCRC    = 12
	freeMagic  = "XDF3"
	freeCRC    = 4
	freeOffset = 2 * leafOffset
)

type dataBlk struct {
	db   uint64 // directory block number
	off  int64  // on the device
	b    []byte
	orig []sfEnt // the entries as read (block 0: "." and ".." first)
}

type leafDir struct {
	blocks []*dataBlk
	// above lists the directory blocks mapped at or above leafOffset
	// (leaf, node and free-index blocks), which are rebuilt
	above []uint64
}

// loadLeafDir reads a leaf- or node-form directory into an sfDir whose
// entries carry the data block (index into blocks) they are in.
func (f *FS) loadLeafDir(r *rawInode) (*sfDir, error) {
	refuse := func(why string) error {
		return fmt.Errorf("xfs: directory %d %s; offvm changes short-form, block, leaf and node directories only: %w", r.ino, why, syscall.EOPNOTSUPP)
	}
	dbs := f.sb.dirBlkSize
	fsbPer := uint64(dbs / f.sb.blockSize)
	leafBlk := uint64(leafOffset / f.sb.blockSize)
	d := &sfDir{isz: 8, leaf: &leafDir{}}
	for _, e := range r.ex {
		switch {
		case e.unwritten:
			return nil, refuse("has unwritten blocks")
		case e.off%fsbPer != 0 || e.count%fsbPer != 0:
			return nil, refuse("has directory blocks split across extents")
		}
		for i := uint64(0); i < e.count; i += fsbPer {
			if e.off+i >= leafBlk {
				d.leaf.above = append(d.leaf.above, (e.off+i)/fsbPer)
				continue
			}
			off, ok := f.sb.fsbToByte(e.start + i)
			if !ok {
				return nil, fmt.Errorf("xfs: directory %d: block outside the file system: %w", r.ino, ErrCorrupt)
			}
			d.leaf.blocks = append(d.leaf.blocks, &dataBlk{db: (e.off + i) / fsbPer, off: off, b: make([]byte, dbs)})
		}
	}
	if len(d.leaf.above) == 0 || len(d.leaf.blocks) == 0 || d.leaf.blocks[0].db != 0 {
		return nil, refuse("has no leaf block or no first data block")
	}
	for bi, blk := range d.leaf.blocks {
		if _, err := f.dev.ReadAt(blk.b, blk.off); err != nil {
			return nil, fmt.Errorf("xfs: reading directory %d: %w", r.ino, err)
		}
		ents, err := f.dataEntries(r.ino, blk.b, f.magic("XDD3"), len(blk.b))
		if err != nil {
			return nil, err
		}
		blk.orig = ents
		for i, e := range ents {
			switch {
			case e.name == "." && bi == 0 && i == 0:
			case e.name == ".." && bi == 0 && i == 1:
				d.parent = make([]byte, 10)
				d.setParent(e.ino)
			default:
				e.blk = bi
				d.ents = append(d.ents, e)
			}
		}
	}
	if d.parent == nil {
		return nil, fmt.Errorf("xfs: directory %d: no \".\" and \"..\" first: %w", r.ino, ErrCorrupt)
	}
	return d, nil
}

// dataEntries decodes the entries of a data block up to end, with
// their offsets in the block.
func (f *FS) dataEntries(ino uint64, b []byte, magic string, end int) ([]sfEnt, error) {
	bad := func(what string) error {
		return fmt.Errorf("xfs: directory %d block: %s: %w", ino, what, ErrCorrupt)
	}
	if string(b[:4]) != magic || (f.v5() && (!crcOK(b, dbCRC) || be.Uint64(b[40:]) != ino)) {
		return nil, bad("bad magic, checksum or owner")
	}
	var out []sfEnt
	for p := f.dbHdr(); p < end; {
		if p+8 > end {
			return nil, bad("entry past the end")
		}
		if be.Uint16(b[p:]) == 0xffff {
			n := int(be.Uint16(b[p+2:]))
			if n < 8 || n%8 != 0 || p+n > end {
				return nil, bad("free space of bad length")
			}
			p += n
			continue
		}
		n := int(b[p+8])
		sz := f.dataEntSize(n)
		if n == 0 || p+sz > end {
			return nil, bad("entry past the end")
		}
		e := sfEnt{ino: be.Uint64(b[p:]) & (1<<56 - 1), name: string(b[p+9 : p+9+n]), blk: -1, off: uint16(p)}
		if f.sb.ftype {
			e.ft = b[p+9+n]
		}
		out = append(out, e)
		p += sz
	}
	return out, nil
}

type leafPtr struct{ hash, addr uint32 }

// layoutData packs ents into data block b (header kept) up to end, one
// free region after them; it returns the entries' leaf pointers and the
// free region's length.
func (f *FS) layoutData(b []byte, end int, base uint64, ents []sfEnt) ([]leafPtr, int) {
	bf := f.dirLay().bestfree
	clear(b[bf:])
	var ptrs []leafPtr
	p := f.dbHdr()
	for _, e := range ents {
		sz := f.dataEntSize(len(e.name))
		be.PutUint64(b[p:], e.ino)
		b[p+8] = byte(len(e.name))
		copy(b[p+9:], e.name)
		if f.sb.ftype {
			b[p+9+len(e.name)] = e.ft
		}
		be.PutUint16(b[p+sz-2:], uint16(p))
		ptrs = append(ptrs, leafPtr{hashName(e.name), uint32((base + uint64(p)) / 8)})
		p += sz
	}
	free := end - p
	if free > 0 {
		be.PutUint16(b[p:], 0xffff)
		be.PutUint16(b[p+2:], uint16(free))
		be.PutUint16(b[p+free-2:], uint16(p))
		be.PutUint16(b[bf:], uint16(p))
		be.PutUint16(b[bf+2:], uint16(free))
	}
	return ptrs, free
}

// sameEnts says whether a data block still holds what it was read with.
func sameEnts(a, b []sfEnt) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || a[i].ino != b[i].ino || a[i].ft != b[i].ft {
			return false
		}
	}
	return true
}

// encodeLeaf places new entries in data blocks with room (adding data
// blocks when none has), writes the data blocks that changed, and
// rebuilds the leaf or node blocks and free index.
func (o *nsOp) encodeLeaf(r *rawInode, d *sfDir, t *txn) error {
	f := o.f
	l := d.leaf
	dbs := int(f.sb.dirBlkSize)
	used := make([]int, len(l.blocks))
	for i := range used {
		used[i] = f.dbHdr()
	}
	used[0] += f.dataEntSize(1) + f.dataEntSize(2)
	for _, e := range d.ents {
		if e.blk >= 0 {
			used[e.blk] += f.dataEntSize(len(e.name))
		}
	}
	for i := range d.ents {
		e := &d.ents[i]
		if e.blk >= 0 {
			continue
		}
		sz := f.dataEntSize(len(e.name))
		for bi := range used {
			if used[bi]+sz <= dbs {
				e.blk, used[bi] = bi, used[bi]+sz
				break
			}
		}
		if e.blk < 0 {
			if err := o.addDataBlock(r, l); err != nil {
				return err
			}
			e.blk = len(l.blocks) - 1
			used = append(used, f.dbHdr()+sz)
		}
	}
	per := make([][]sfEnt, len(l.blocks))
	per[0] = []sfEnt{{name: ".", ft: 2, ino: r.ino}, {name: "..", ft: 2, ino: d.parentIno()}}
	for _, e := range d.ents {
		per[e.blk] = append(per[e.blk], e)
	}
	per, err := o.dropEmpty(r, l, per)
	if err != nil {
		return err
	}
	maxdb := l.blocks[len(l.blocks)-1].db
	bests := make([]uint16, maxdb+1)
	for i := range bests {
		bests[i] = 0xffff
	}
	var ptrs []leafPtr
	for bi, blk := range l.blocks {
		base := blk.db * uint64(dbs)
		if blk.orig != nil && sameEnts(blk.orig, per[bi]) {
			for _, e := range blk.orig { // unchanged: not written
				ptrs = append(ptrs, leafPtr{hashName(e.name), uint32((base + uint64(e.off)) / 8)})
			}
			bests[blk.db] = be.Uint16(blk.b[f.dirLay().bestfree+2:])
			continue
		}
		b := append([]byte(nil), blk.b...)
		copy(b, f.magic("XDD3"))
		p, free := f.layoutData(b, dbs, base, per[bi])
		ptrs = append(ptrs, p...)
		bests[blk.db] = uint16(max(free, 0))
		t.putCRC(blk.off, b, dbCRC)
	}
	sort.SliceStable(ptrs, func(i, j int) bool { return ptrs[i].hash < ptrs[j].hash })
	be.PutUint64(r.b[diSize:], (maxdb+1)*uint64(dbs))
	return o.writeAbove(r, l, t, ptrs, bests)
}

// dropEmpty unmaps the data blocks (other than the first) left with no
// entry, as the kernel's xfs_dir2_shrink_inode does: xfs_repair junks
// an empty data block. It returns the entries of the blocks kept.
func (o *nsOp) dropEmpty(r *rawInode, l *leafDir, per [][]sfEnt) ([][]sfEnt, error) {
	keep := l.blocks[:1]
	kept := per[:1]
	for bi := 1; bi < len(l.blocks); bi++ {
		if len(per[bi]) > 0 {
			keep, kept = append(keep, l.blocks[bi]), append(kept, per[bi])
			continue
		}
		if err := o.unmapDirBlock(r, l.blocks[bi].db); err != nil {
			return nil, err
		}
	}
	l.blocks = keep
	return kept, nil
}

// addDataBlock maps a new, empty data block after the last one.
func (o *nsOp) addDataBlock(r *rawInode, l *leafDir) error {
	f := o.f
	db := l.blocks[len(l.blocks)-1].db + 1
	if db*uint64(f.sb.dirBlkSize) >= leafOffset {
		return fmt.Errorf("xfs: directory %d has no room for another data block: %w", r.ino, syscall.ENOSPC)
	}
	off, err := o.allocDirBlock(r, db)
	if err != nil {
		return err
	}
	b := make([]byte, f.sb.dirBlkSize)
	f.blkHeader(b, "XDD3", off, r)
	l.blocks = append(l.blocks, &dataBlk{db: db, off: off, b: b})
	return nil
}

// allocDirBlock maps directory block db of r to new contiguous blocks
// near the directory's others and returns where they lie.
func (o *nsOp) allocDirBlock(r *rawInode, db uint64) (int64, error) {
	f := o.f
	fsbPer := uint64(f.sb.dirBlkSize / f.sb.blockSize)
	// right after the block before it, so that the extent list grows
	// only when that block is taken
	// Leaf-space blocks keep out of the free extent the data blocks
	// grow into, which would split both into many extents.
	var goal, dataEnd uint64
	leafBlk := uint64(leafOffset / o.f.sb.blockSize)
	for _, e := range r.ex {
		if e.off+e.count <= db*fsbPer {
			goal = e.start + db*fsbPer - e.off
		}
		if e.off < leafBlk {
			dataEnd = e.start + e.count
		}
	}
	avoid := ^uint64(0)
	if db*fsbPer >= leafBlk {
		avoid = dataEnd
	}
	start, n, err := o.sp.allocAvoiding(goal, fsbPer, avoid, dataOwner(r.ino, db*fsbPer))
	if err != nil {
		return 0, err
	}
	if n < fsbPer {
		return 0, fmt.Errorf("xfs: no %d contiguous free blocks for directory %d: %w", fsbPer, r.ino, syscall.ENOSPC)
	}
	off, ok := f.sb.fsbToByte(start)
	if !ok {
		return 0, fmt.Errorf("xfs: allocated block %d outside the file system: %w", start, ErrCorrupt)
	}
	r.ex = append(r.ex, extent{off: db * fsbPer, start: start, count: fsbPer})
	sort.Slice(r.ex, func(i, j int) bool { return r.ex[i].off < r.ex[j].off })
	r.remap = true
	be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+fsbPer)
	return off, nil
}

// unmapDirBlock frees directory block db of r.
func (o *nsOp) unmapDirBlock(r *rawInode, db uint64) error {
	fsbPer := uint64(o.f.sb.dirBlkSize / o.f.sb.blockSize)
	lo, hi := db*fsbPer, (db+1)*fsbPer
	var out []extent
	for _, e := range r.ex {
		if e.off+e.count <= lo || e.off >= hi {
			out = append(out, e)
			continue
		}
		if e.off < lo {
			out = append(out, extent{off: e.off, start: e.start, count: lo - e.off})
		}
		if end := e.off + e.count; end > hi {
			out = append(out, extent{off: hi, start: e.start + (hi - e.off), count: end - hi})
		}
		a, b := max(lo, e.off), min(hi, e.off+e.count)
		if err := o.sp.free(e.start+(a-e.off), b-a, dataOwner(r.ino, a)); err != nil {
			return err
		}
		be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])-(b-a))
	}
	r.ex, r.remap = out, true
	return nil
}
