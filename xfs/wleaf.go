package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// Leaf-form directories: data blocks below leafOffset and one leaf
// block (hash-sorted pointers to every entry, and each data block's
// largest free region) at leafOffset. As with single blocks, changed
// directories are laid out again: every data block packed from its
// entries, the leaf rebuilt from them. Node-form directories (free-index
// blocks, a leaf per hash range) are refused.

const (
	leafHdr    = 64
	leafCRC    = 12
	leaf1Magic = 0x3df1
)

type dataBlk struct {
	db  uint64 // directory block number
	off int64  // on the device
	b   []byte
}

type leafDir struct {
	blocks  []*dataBlk
	leafOff int64
	leafB   []byte
}

// loadLeafDir reads a leaf-form directory into an sfDir whose entries
// carry the data block (index into blocks) they are in.
func (f *FS) loadLeafDir(r *rawInode) (*sfDir, error) {
	refuse := func(why string) error {
		return fmt.Errorf("xfs: directory %d %s; offvm changes short-form, single-block and leaf directories only: %w", r.ino, why, syscall.EOPNOTSUPP)
	}
	dbs := f.sb.dirBlkSize
	fsbPer := uint64(dbs / f.sb.blockSize)
	leafBlk := uint64(leafOffset / f.sb.blockSize)
	d := &sfDir{isz: 8, leaf: &leafDir{}}
	for _, e := range r.ex {
		switch {
		case e.unwritten:
			return nil, refuse("has unwritten blocks")
		case e.off >= leafBlk && (e.off != leafBlk || e.count != fsbPer || d.leaf.leafB != nil):
			return nil, refuse("is in node form")
		case e.off == leafBlk:
			off, ok := f.sb.fsbToByte(e.start)
			if !ok {
				return nil, fmt.Errorf("xfs: directory %d: leaf outside the file system: %w", r.ino, ErrCorrupt)
			}
			d.leaf.leafOff, d.leaf.leafB = off, make([]byte, dbs)
			continue
		case e.off%fsbPer != 0 || e.count%fsbPer != 0:
			return nil, refuse("has directory blocks split across extents")
		}
		for i := uint64(0); i < e.count; i += fsbPer {
			off, ok := f.sb.fsbToByte(e.start + i)
			if !ok {
				return nil, fmt.Errorf("xfs: directory %d: block outside the file system: %w", r.ino, ErrCorrupt)
			}
			d.leaf.blocks = append(d.leaf.blocks, &dataBlk{db: (e.off + i) / fsbPer, off: off, b: make([]byte, dbs)})
		}
	}
	if d.leaf.leafB == nil || len(d.leaf.blocks) == 0 {
		return nil, refuse("has no leaf block")
	}
	lb := d.leaf.leafB
	if _, err := f.dev.ReadAt(lb, d.leaf.leafOff); err != nil {
		return nil, fmt.Errorf("xfs: reading directory %d: %w", r.ino, err)
	}
	if be.Uint16(lb[8:]) != leaf1Magic || !crcOK(lb, leafCRC) || be.Uint64(lb[48:]) != r.ino {
		return nil, refuse("has a leaf block that is not a single leaf")
	}
	for bi, blk := range d.leaf.blocks {
		if _, err := f.dev.ReadAt(blk.b, blk.off); err != nil {
			return nil, fmt.Errorf("xfs: reading directory %d: %w", r.ino, err)
		}
		ents, err := f.dataEntries(r.ino, blk.b, "XDD3", len(blk.b))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			switch {
			case e.name == "." && bi == 0:
			case e.name == ".." && bi == 0:
				d.parent = make([]byte, 10)
				d.setParent(e.ino)
			default:
				e.blk = bi
				d.ents = append(d.ents, e)
			}
		}
	}
	if d.parent == nil {
		return nil, fmt.Errorf("xfs: directory %d: no \"..\" entry: %w", r.ino, ErrCorrupt)
	}
	return d, nil
}

// dataEntries decodes the entries of a data block up to end.
func (f *FS) dataEntries(ino uint64, b []byte, magic string, end int) ([]sfEnt, error) {
	bad := func(what string) error {
		return fmt.Errorf("xfs: directory %d block: %s: %w", ino, what, ErrCorrupt)
	}
	if string(b[:4]) != magic || !crcOK(b, dbCRC) || be.Uint64(b[40:]) != ino {
		return nil, bad("bad magic, checksum or owner")
	}
	var out []sfEnt
	for p := dbHdr; p < end; {
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
		sz := dataEntSize(n)
		if n == 0 || p+sz > end {
			return nil, bad("entry past the end")
		}
		out = append(out, sfEnt{ino: be.Uint64(b[p:]) & (1<<56 - 1), name: string(b[p+9 : p+9+n]), ft: b[p+9+n], blk: -1})
		p += sz
	}
	return out, nil
}

type leafPtr struct{ hash, addr uint32 }

// layoutData packs ents into data block b (header kept) up to end, one
// free region after them; it returns the entries' leaf pointers and the
// free region's length.
func layoutData(b []byte, end int, base uint64, ents []sfEnt) ([]leafPtr, int) {
	clear(b[dbBestfree:])
	var ptrs []leafPtr
	p := dbHdr
	for _, e := range ents {
		sz := dataEntSize(len(e.name))
		be.PutUint64(b[p:], e.ino)
		b[p+8] = byte(len(e.name))
		copy(b[p+9:], e.name)
		b[p+9+len(e.name)] = e.ft
		be.PutUint16(b[p+sz-2:], uint16(p))
		ptrs = append(ptrs, leafPtr{hashName(e.name), uint32((base + uint64(p)) / 8)})
		p += sz
	}
	free := end - p
	if free > 0 {
		be.PutUint16(b[p:], 0xffff)
		be.PutUint16(b[p+2:], uint16(free))
		be.PutUint16(b[p+free-2:], uint16(p))
		be.PutUint16(b[dbBestfree:], uint16(p))
		be.PutUint16(b[dbBestfree+2:], uint16(free))
	}
	return ptrs, free
}

// encodeLeaf places new entries in data blocks with room, lays every
// data block out again and rebuilds the leaf; it refuses when a new
// data block or a bigger leaf would be needed.
func (d *sfDir) encodeLeaf(f *FS, r *rawInode, t *txn) error {
	l := d.leaf
	dbs := int(f.sb.dirBlkSize)
	used := make([]int, len(l.blocks))
	for i := range used {
		used[i] = dbHdr
	}
	used[0] += dataEntSize(1) + dataEntSize(2)
	for _, e := range d.ents {
		if e.blk >= 0 {
			used[e.blk] += dataEntSize(len(e.name))
		}
	}
	for i := range d.ents {
		e := &d.ents[i]
		if e.blk >= 0 {
			continue
		}
		for bi := range used {
			if used[bi]+dataEntSize(len(e.name)) <= dbs {
				e.blk, used[bi] = bi, used[bi]+dataEntSize(len(e.name))
				break
			}
		}
		if e.blk < 0 {
			return fmt.Errorf("xfs: directory %d needs a new data block, which offvm does not add: %w", r.ino, syscall.EOPNOTSUPP)
		}
	}
	maxdb := l.blocks[len(l.blocks)-1].db
	bests := make([]uint16, maxdb+1)
	for i := range bests {
		bests[i] = 0xffff
	}
	var ptrs []leafPtr
	for bi, blk := range l.blocks {
		var ents []sfEnt
		if bi == 0 {
			ents = append(ents, sfEnt{name: ".", ft: 2, ino: r.ino}, sfEnt{name: "..", ft: 2, ino: d.parentIno()})
		}
		for _, e := range d.ents {
			if e.blk == bi {
				ents = append(ents, e)
			}
		}
		b := append([]byte(nil), blk.b...)
		p, free := layoutData(b, dbs, blk.db*uint64(dbs), ents)
		ptrs = append(ptrs, p...)
		bests[blk.db] = uint16(free)
		t.putCRC(blk.off, b, dbCRC)
	}
	if leafHdr+len(ptrs)*8+len(bests)*2+4 > dbs {
		return fmt.Errorf("xfs: directory %d's leaf would overflow into node form, which offvm does not make: %w", r.ino, syscall.EOPNOTSUPP)
	}
	sort.SliceStable(ptrs, func(i, j int) bool { return ptrs[i].hash < ptrs[j].hash })
	lb := append([]byte(nil), l.leafB...)
	clear(lb[leafHdr:])
	be.PutUint16(lb[56:], uint16(len(ptrs)))
	be.PutUint16(lb[58:], 0)
	for i, p := range ptrs {
		be.PutUint32(lb[leafHdr+i*8:], p.hash)
		be.PutUint32(lb[leafHdr+i*8+4:], p.addr)
	}
	be.PutUint32(lb[dbs-4:], uint32(len(bests)))
	for i, b := range bests {
		be.PutUint16(lb[dbs-4-2*len(bests)+2*i:], b)
	}
	t.putCRC(l.leafOff, lb, leafCRC)
	return nil
}
