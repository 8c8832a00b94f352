package xfs

import (
	"fmt"
	"slices"
	"syscall"
)

// writeAbove rebuilds everything of a directory at and above
// leafOffset from its entries' hash-sorted pointers and its data
// blocks' largest free regions: one leaf block when it fits, else a
// one-level node over LEAFN leaves and free-index blocks.
func (o *nsOp) writeAbove(r *rawInode, l *leafDir, t *txn, ptrs []leafPtr, bests []uint16) error {
	f := o.f
	dbs := int(f.sb.dirBlkSize)
	fsbPer := uint32(f.sb.dirBlkSize / f.sb.blockSize)
	l0, f0 := uint64(leafOffset/dbs), uint64(freeOffset/dbs)
	dl := f.dirLay()
	leafHdr, freeHdr := dl.leafHdr, dl.freeHdr
	slices.Sort(l.above)
	var leaves, frees []uint64 // directory block numbers
	var chunks [][]leafPtr
	if leafHdr+len(ptrs)*8+len(bests)*2+4 > dbs {
		perLeaf := (dbs - leafHdr) / 8
		for i := 0; i < len(ptrs); i += perLeaf {
			chunks = append(chunks, ptrs[i:min(len(ptrs), i+perLeaf)])
		}
		if len(chunks) > (dbs-leafHdr)/8 {
			return fmt.Errorf("xfs: directory %d would need a node B+tree of two levels, which offvm does not make: %w", r.ino, syscall.EOPNOTSUPP)
		}
		next := l0 + 1
		for _, db := range l.above { // reuse the leaf blocks it has
			if db > l0 && db < f0 && len(leaves) < len(chunks) {
				leaves = append(leaves, db)
				next = db + 1
			}
		}
		for len(leaves) < len(chunks) {
			leaves = append(leaves, next)
			next++
		}
		fper := (dbs - freeHdr) / 2
		for k := 0; k*fper < len(bests); k++ {
			frees = append(frees, f0+uint64(k))
		}
	}
	need := append(append([]uint64{l0}, leaves...), frees...)
	for _, db := range l.above {
		if !slices.Contains(need, db) {
			if err := o.unmapDirBlock(r, db); err != nil {
				return err
			}
		}
	}
	where := map[uint64]int64{}
	for _, db := range need {
		off, err := o.dirBlockAt(r, db, slices.Contains(l.above, db))
		if err != nil {
			return err
		}
		where[db] = off
	}
	l.above = need
	if chunks == nil {
		b := make([]byte, dbs)
		f.daHeader(b, dl.leaf1, where[l0], r, 0, 0)
		putLeafEnts(b, dl, ptrs)
		be.PutUint32(b[dbs-4:], uint32(len(bests)))
		for i, v := range bests {
			be.PutUint16(b[dbs-4-2*len(bests)+2*i:], v)
		}
		t.putCRC(where[l0], b, leafCRC)
		return nil
	}
	root := make([]byte, dbs)
	f.daHeader(root, dl.node, where[l0], r, 0, 0)
	be.PutUint16(root[dl.count:], uint16(len(chunks)))
	be.PutUint16(root[dl.count+2:], 1)
	for i, c := range chunks {
		var forw, back uint32
		if i+1 < len(leaves) {
			forw = uint32(leaves[i+1]) * fsbPer
		}
		if i > 0 {
			back = uint32(leaves[i-1]) * fsbPer
		}
		b := make([]byte, dbs)
		f.daHeader(b, dl.leafN, where[leaves[i]], r, forw, back)
		putLeafEnts(b, dl, c)
		t.putCRC(where[leaves[i]], b, leafCRC)
		be.PutUint32(root[leafHdr+i*8:], c[len(c)-1].hash)
		be.PutUint32(root[leafHdr+i*8+4:], uint32(leaves[i])*fsbPer)
	}
	t.putCRC(where[l0], root, leafCRC)
	fper := (dbs - freeHdr) / 2
	for k, db := range frees {
		b := make([]byte, dbs)
		f.blkHeader(b, freeMagic, where[db], r)
		part := bests[k*fper : min(len(bests), (k+1)*fper)]
		nused := 0
		for i, v := range part {
			be.PutUint16(b[freeHdr+2*i:], v)
			if v != 0xffff {
				nused++
			}
		}
		be.PutUint32(b[dl.firstdb:], uint32(k*fper))
		be.PutUint32(b[dl.firstdb+4:], uint32(len(part)))
		be.PutUint32(b[dl.firstdb+8:], uint32(nused))
		t.putCRC(where[db], b, freeCRC)
	}
	return nil
}

// dirBlockAt is where directory block db of r lies, mapping it first
// when it is not.
func (o *nsOp) dirBlockAt(r *rawInode, db uint64, mapped bool) (int64, error) {
	if !mapped {
		return o.allocDirBlock(r, db)
	}
	fsbPer := uint64(o.f.sb.dirBlkSize / o.f.sb.blockSize)
	if i, in := lookupExtent(r.ex, db*fsbPer); in {
		e := r.ex[i]
		if off, ok := o.f.sb.fsbToByte(e.start + db*fsbPer - e.off); ok {
			return off, nil
		}
	}
	return 0, fmt.Errorf("xfs: directory %d: block %d not mapped: %w", r.ino, db, ErrCorrupt)
}

func putLeafEnts(b []byte, dl *dirLayout, ptrs []leafPtr) {
	be.PutUint16(b[dl.count:], uint16(len(ptrs)))
	for i, p := range ptrs {
		be.PutUint32(b[dl.leafHdr+i*8:], p.hash)
		be.PutUint32(b[dl.leafHdr+i*8+4:], p.addr)
	}
}
