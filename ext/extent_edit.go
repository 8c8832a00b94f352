package ext

import (
	"fmt"
	"sort"
	"syscall"
)

// extent is one mapping of an extent tree, in a flat list the writer
// edits and then lays out again.
type extent struct {
	lblk      uint32
	n         uint32
	pblk      uint64
	unwritten bool // allocated by fallocate, reads as zeros
}

const maxExtentLen = 32768

// loadExtents reads an inode's extents and the leaf blocks that hold
// them. Trees deeper than one index level are left to the kernel.
func (f *FS) loadExtents(r *rino) ([]extent, []uint64, error) {
	root := r.iblock()
	h, err := parseExtentNode(root, r.ino)
	if err != nil {
		return nil, nil, err
	}
	switch h.depth {
	case 0:
		exts, err := f.leafExtents(r, root, h)
		return exts, nil, err
	case 1:
	default:
		return nil, nil, fmt.Errorf("ext: inode %d: extent tree of depth %d cannot be changed in offvm: %w", r.ino, h.depth, syscall.EROFS)
	}
	var exts []extent
	var leaves []uint64
	for i := 0; i < int(h.entries); i++ {
		e := root[12+12*i:]
		blk := uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32
		b, err := f.readBlock(blk)
		if err != nil {
			return nil, nil, err
		}
		lh, err := parseExtentNode(b, r.ino)
		if err != nil {
			return nil, nil, err
		}
		if lh.depth != 0 {
			return nil, nil, fmt.Errorf("ext: inode %d: extent leaf %d at depth %d: %w", r.ino, blk, lh.depth, syscall.EIO)
		}
		le1, err := f.leafExtents(r, b, lh)
		if err != nil {
			return nil, nil, err
		}
		exts = append(exts, le1...)
		leaves = append(leaves, blk)
	}
	return exts, leaves, nil
}

func (f *FS) leafExtents(r *rino, b []byte, h extentHeader) ([]extent, error) {
	var out []extent
	for i := 0; i < int(h.entries); i++ {
		e := b[12+12*i:]
		x := extent{lblk: le.Uint32(e), n: uint32(le.Uint16(e[4:])),
			pblk: uint64(le.Uint32(e[8:])) | uint64(le.Uint16(e[6:]))<<32}
		if x.n > maxExtentLen {
			x.n -= maxExtentLen
			x.unwritten = true
		}
		if x.n == 0 || x.pblk == 0 || x.pblk+uint64(x.n) > f.sb.blocksCount {
			return nil, fmt.Errorf("ext: inode %d: extent %d+%d at block %d: %w", r.ino, x.lblk, x.n, x.pblk, syscall.EIO)
		}
		out = append(out, x)
	}
	return out, nil
}

// refuseUnwritten: the writer does not convert unwritten extents, so a
// file holding any is changed only by deleting it.
func refuseUnwritten(ino uint32, exts []extent) error {
	for _, e := range exts {
		if e.unwritten {
			return fmt.Errorf("ext: inode %d has unwritten (fallocated) extents, which offvm does not change: %w", ino, syscall.EROFS)
		}
	}
	return nil
}

// mergeExtents sorts and joins extents that continue each other on disk.
func mergeExtents(exts []extent) []extent {
	sort.Slice(exts, func(i, j int) bool { return exts[i].lblk < exts[j].lblk })
	var out []extent
	for _, e := range exts {
		if k := len(out) - 1; k >= 0 {
			p := &out[k]
			if p.lblk+p.n == e.lblk && p.pblk+uint64(p.n) == e.pblk && p.n+e.n <= maxExtentLen && !p.unwritten && !e.unwritten {
				p.n += e.n
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// leafCap is how many extents one leaf block holds.
func (f *FS) leafCap() int { return int(f.sb.blockSize-12) / 12 }

// checkExtentCount tells whether exts fit the shapes the writer makes:
// four in the inode, or one index level of at most four leaf blocks.
func (f *FS) checkExtentCount(ino uint32, n int) error {
	if n > 4*f.leafCap() {
		return fmt.Errorf("ext: inode %d would need %d extents, more than one index level holds; offvm does not grow extent trees deeper: %w", ino, n, syscall.EROFS)
	}
	return nil
}

// storeExtents lays exts out again (merged): in the inode when four or
// fewer, else under one index level, reusing old leaf blocks first. It
// also sets i_blocks. The caller writes the inode.
func (f *FS) storeExtents(r *rino, exts []extent, oldLeaves []uint64) error {
	exts = mergeExtents(exts)
	if err := f.checkExtentCount(r.ino, len(exts)); err != nil {
		return err
	}
	root := r.iblock()
	var leaves []uint64
	if len(exts) <= 4 {
		clear(root)
		putExtentHeader(root, len(exts), 4, 0)
		for i, e := range exts {
			putExtent(root[12+12*i:], e)
		}
	} else {
		capn := f.leafCap()
		nl := (len(exts) + capn - 1) / capn
		for len(leaves) < nl {
			if len(oldLeaves) > 0 {
				leaves, oldLeaves = append(leaves, oldLeaves[0]), oldLeaves[1:]
				continue
			}
			p, _, err := f.allocBlocks(exts[0].pblk, 1)
			if err != nil {
				return err
			}
			leaves = append(leaves, p)
		}
		clear(root)
		putExtentHeader(root, nl, 4, 1)
		for i := 0; i < nl; i++ {
			part := exts[i*capn : min(len(exts), (i+1)*capn)]
			b := make([]byte, f.sb.blockSize)
			putExtentHeader(b, len(part), capn, 0)
			for j, e := range part {
				putExtent(b[12+12*j:], e)
			}
			f.w.blockTailCsum(r.ino, r.gen(), b, 12+12*capn)
			if err := f.writeBlock(leaves[i], b); err != nil {
				return err
			}
			ix := root[12+12*i:]
			le.PutUint32(ix, part[0].lblk) // e2fsck wants the child's first extent
			le.PutUint32(ix[4:], uint32(leaves[i]))
			le.PutUint16(ix[8:], uint16(leaves[i]>>32))
		}
	}
	for _, l := range oldLeaves {
		if err := f.freeBlocks(l, 1); err != nil {
			return err
		}
	}
	var total uint64
	for _, e := range exts {
		total += uint64(e.n)
	}
	total += uint64(len(leaves))
	if r.fileACL() != 0 {
		total++
	}
	r.setBlocks(total * uint64(f.sb.blockSize/512))
	r.setFlags(r.flags() &^ flagHugeFile) // i_blocks is in 512-byte units now
	return nil
}

func putExtentHeader(b []byte, entries, max, depth int) {
	le.PutUint16(b, extentMagic)
	le.PutUint16(b[2:], uint16(entries))
	le.PutUint16(b[4:], uint16(max))
	le.PutUint16(b[6:], uint16(depth))
}

func putExtent(b []byte, e extent) {
	le.PutUint32(b, e.lblk)
	n := e.n
	if e.unwritten {
		n += maxExtentLen
	}
	le.PutUint16(b[4:], uint16(n))
	le.PutUint16(b[6:], uint16(e.pblk>>32))
	le.PutUint32(b[8:], uint32(e.pblk))
}

// lookupExtent maps lblk through a flat list: the physical block, or 0.
func lookupExtent(exts []extent, lblk uint32) uint64 {
	for _, e := range exts {
		if lblk >= e.lblk && lblk-e.lblk < e.n && !e.unwritten {
			return e.pblk + uint64(lblk-e.lblk)
		}
	}
	return 0
}
