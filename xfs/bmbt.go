package xfs

import (
	"fmt"
	"syscall"
)

// Extent B+trees of data forks (bmbt). A file whose extents no longer
// fit its inode keeps them in long-format BMA3 blocks: leaves of
// records, nodes of keys (first file block) and pointers, the root in
// the inode's data fork. When an operation changes a B+tree-mapped
// file's extents the writer does not split or join blocks as the
// kernel does: it lays the whole tree out again from the extent list,
// in the blocks the old tree held (new ones allocated, surplus ones
// freed), records spread evenly so that every block but the root is at
// least half full (xfs_repair's rule). A tree whose extents fit the
// inode again becomes an extent list, its blocks freed, as the kernel's
// xfs_bmap_btree_to_extents does; xfs_repair wants B+tree format only
// when the extents do not fit.

const (
	bmbtHdr5 = 72 // xfs_btree_block, long form with CRC
	bmbtHdr4 = 24 // and without
	bmbtCRC  = 64
	bmdrHdr  = 4 // the in-inode root: level, numrecs
	nullFSB  = ^uint64(0)
)

// bmbtTreeBlocks lists every block of the B+tree rooted in fork root
// (the data or attribute fork) below the root. Leaves are named by
// their parents and are not read.
func (f *FS) bmbtTreeBlocks(in *inode, root []byte) ([]uint64, error) {
	level, nrecs := int(be.Uint16(root)), int(be.Uint16(root[2:]))
	maxr := (len(root) - bmdrHdr) / 16
	if level == 0 || level > maxBmapLevels || nrecs > maxr {
		return nil, fmt.Errorf("xfs: inode %d: bmap root level %d with %d records: %w", in.ino, level, nrecs, ErrCorrupt)
	}
	var cur []uint64
	for i := 0; i < nrecs; i++ {
		cur = append(cur, be.Uint64(root[bmdrHdr+maxr*8+i*8:]))
	}
	var all []uint64
	for l := level - 1; ; l-- {
		all = append(all, cur...)
		if l == 0 || len(all) > maxBmapBlocks {
			break
		}
		var next []uint64
		for _, fsb := range cur {
			b, err := f.readFSB(fsb, 1)
			if err != nil {
				return nil, fmt.Errorf("xfs: inode %d: %w", in.ino, err)
			}
			if string(b[:4]) != f.magic("BMA3") || int(be.Uint16(b[4:])) != l {
				return nil, fmt.Errorf("xfs: inode %d: bmap block %d is not a level %d bmap block: %w", in.ino, fsb, l, ErrCorrupt)
			}
			n, nmax := int(be.Uint16(b[6:])), (len(b)-f.bmbtHdr())/16
			if n > nmax {
				return nil, fmt.Errorf("xfs: inode %d: bmap block %d holds %d records: %w", in.ino, fsb, n, ErrCorrupt)
			}
			for i := 0; i < n; i++ {
				next = append(next, be.Uint64(b[f.bmbtHdr()+nmax*8+i*8:]))
			}
		}
		cur = next
	}
	return all, nil
}

// dataFork is the data fork's part of the inode's literal area.
func (r *rawInode) dataFork() []byte {
	fork := r.b[r.core():]
	if fo := int(r.b[diForkoff]) * 8; fo > 0 {
		fork = fork[:fo]
	}
	return fork
}

// treeShape is how many blocks each level of a tree over n extents
// needs, leaves first; the root (in the inode) is not counted.
func treeShape(n, perBlock, rootMax int) []int {
	levels := []int{(n + perBlock - 1) / perBlock}
	for levels[len(levels)-1] > rootMax {
		levels = append(levels, (levels[len(levels)-1]+perBlock-1)/perBlock)
	}
	return levels
}

// spreadEven splits n items into k groups whose sizes differ by one at most.
func spreadEven(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// layoutMap writes r's extent list into its data fork, as an extent
// list when it fits and as a B+tree when it does not, queueing tree
// blocks into t and taking or giving blocks through sp. After it,
// queue writes the inode without touching its map again.
func (f *FS) layoutMap(r *rawInode, sp *space, t *txn) error {
	if r.format() != fmtExtents && r.format() != fmtBtree {
		return fmt.Errorf("xfs: inode %d: data fork format %d has no extents: %w", r.ino, r.format(), ErrCorrupt)
	}
	ex := mergeExtents(r.ex)
	fork := r.dataFork()
	old := r.bmbt
	var blocks []uint64
	if len(ex)*16 <= len(fork) {
		for _, b := range old {
			if err := sp.free(b, 1, bmbtOwner(r.ino)); err != nil {
				return err
			}
		}
		clear(fork)
		for i, e := range ex {
			encodeExtent(fork[i*16:], e)
		}
		r.b[5] = fmtExtents
	} else {
		var err error
		if blocks, err = f.treeBlocks(sp, old, ex, len(fork), bmbtOwner(r.ino)); err != nil {
			return err
		}
		f.putTree(r, t, blocks, ex, fork)
		r.b[5] = fmtBtree
	}
	be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+uint64(len(blocks))-uint64(len(old)))
	if r.flags2()&flags2Nrext64 != 0 {
		be.PutUint64(r.b[diBigNextents:], uint64(len(ex)))
	} else {
		be.PutUint32(r.b[diNextents:], uint32(len(ex)))
	}
	r.ex, r.bmbt, r.mapped = ex, blocks, true
	return nil
}

// treeBlocks is the blocks a tree over ex needs: the old tree's first,
// then new ones next to them (or to the file's first extent); what the
// old tree held beyond is freed.
// o owns the tree's blocks (the data or the attribute fork's bmbt).
func (f *FS) treeBlocks(sp *space, old []uint64, ex []extent, forkLen int, o rmOwner) ([]uint64, error) {
	per := (int(f.sb.blockSize) - f.bmbtHdr()) / 16
	shape := treeShape(len(ex), per, (forkLen-bmdrHdr)/16)
	if len(shape) >= maxBmapLevels {
		return nil, fmt.Errorf("xfs: inode %d: %d extents need a B+tree of %d levels: %w", o.owner, len(ex), len(shape)+1, syscall.EFBIG)
	}
	need := 0
	for _, n := range shape {
		need += n
	}
	blocks := append([]uint64(nil), old[:min(need, len(old))]...)
	for _, b := range old[len(blocks):] {
		if err := sp.free(b, 1, o); err != nil {
			return nil, err
		}
	}
	goal := ex[0].start
	if len(blocks) > 0 {
		goal = blocks[len(blocks)-1] + 1
	}
	for len(blocks) < need {
		start, n, err := sp.alloc(goal, uint64(need-len(blocks)), o)
		if err != nil {
			return nil, err
		}
		for i := uint64(0); i < n; i++ {
			blocks = append(blocks, start+i)
		}
		goal = start + n
	}
	return blocks, nil
}

// child is one entry of a level being built: the first file block it
// maps and where it lies.
type child struct{ key, fsb uint64 }

// putTree queues the tree's blocks, leaves first, and writes the root
// into the fork. blocks are used in order, level by level.
func (f *FS) putTree(r *rawInode, t *txn, blocks []uint64, ex []extent, fork []byte) {
	per := (int(f.sb.blockSize) - f.bmbtHdr()) / 16
	rootMax := (len(fork) - bmdrHdr) / 16
	shape := treeShape(len(ex), per, rootMax)
	var kids []child
	for _, e := range ex {
		kids = append(kids, child{key: e.off})
	}
	next := 0
	for level, nb := range shape {
		mine := blocks[next : next+nb]
		next += nb
		var up []child
		pos := 0
		for i, cnt := range spreadEven(len(kids), nb) {
			b := f.bmbtHeader(r, mine, i, level, cnt)
			for j := 0; j < cnt; j++ {
				if level == 0 {
					encodeExtent(b[f.bmbtHdr()+j*16:], ex[pos+j])
				} else {
					be.PutUint64(b[f.bmbtHdr()+j*8:], kids[pos+j].key)
					be.PutUint64(b[f.bmbtHdr()+per*8+j*8:], kids[pos+j].fsb)
				}
			}
			up = append(up, child{key: kids[pos].key, fsb: mine[i]})
			pos += cnt
			off, _ := f.sb.fsbToByte(mine[i])
			t.putCRC(off, b, bmbtCRC)
		}
		kids = up
	}
	clear(fork)
	be.PutUint16(fork, uint16(len(shape)))
	be.PutUint16(fork[2:], uint16(len(kids)))
	for i, k := range kids {
		be.PutUint64(fork[bmdrHdr+i*8:], k.key)
		be.PutUint64(fork[bmdrHdr+rootMax*8+i*8:], k.fsb)
	}
}

// bmbtHeader is a new block i of a level: magic, level, count, its
// siblings on the level, and the v5 self-describing fields.
func (f *FS) bmbtHeader(r *rawInode, level []uint64, i, lvl, n int) []byte {
	b := make([]byte, f.sb.blockSize)
	copy(b, f.magic("BMA3"))
	be.PutUint16(b[4:], uint16(lvl))
	be.PutUint16(b[6:], uint16(n))
	left, right := siblings(level, i, nullFSB)
	be.PutUint64(b[8:], left)
	be.PutUint64(b[16:], right)
	if !f.v5() {
		return b
	}
	off, _ := f.sb.fsbToByte(level[i])
	be.PutUint64(b[24:], uint64(off/512))
	copy(b[40:56], r.uuid())
	be.PutUint64(b[56:], r.ino)
	return b
}
