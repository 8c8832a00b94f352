package ext

import (
	"fmt"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// fileForWrite loads a regular, extent-mapped inode.
func (f *FS) fileForWrite(ino volume.Ino) (*rino, error) {
	if ino == 0 || ino > volume.Ino(f.sb.inodesCount) {
		return nil, fmt.Errorf("ext: inode %d out of range: %w", ino, syscall.ENOENT)
	}
	r, err := f.loadRaw(uint32(ino))
	if err != nil {
		return nil, err
	}
	switch {
	case r.isDir():
		return nil, fmt.Errorf("ext: inode %d is a directory: %w", ino, syscall.EISDIR)
	case r.mode()&sIFMT != sIFREG:
		return nil, fmt.Errorf("ext: inode %d is not a regular file: %w", ino, syscall.EINVAL)
	case r.flags()&(flagEncrypt|flagInlineData|flagCompressed|flagCompressedBlocks) != 0:
		return nil, fmt.Errorf("ext: inode %d is encrypted, inline or compressed; offvm does not write it: %w", ino, syscall.EROFS)
	case !r.hasExtents():
		return nil, fmt.Errorf("ext: inode %d: ext2/ext3 block-mapped files are read-only in offvm: %w", ino, syscall.EROFS)
	}
	return r, nil
}

// WriteAt writes p at off, allocating blocks for the parts not mapped.
func (f *FS) WriteAt(ino volume.Ino, p []byte, off int64) (int, error) {
	if _, err := f.begin(); err != nil {
		return 0, err
	}
	defer f.end()
	r, err := f.fileForWrite(ino)
	if err != nil {
		return 0, err
	}
	if err := f.writeData(r, p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *FS) writeData(r *rino, p []byte, off int64) error {
	bs := f.sb.blockSize
	end := off + int64(len(p))
	if off < 0 || end < off || (end+bs-1)/bs >= 1<<32-1 {
		return fmt.Errorf("ext: inode %d: write at %d of %d bytes is beyond the largest file: %w", r.ino, off, len(p), syscall.EFBIG)
	}
	if err := f.mapRange(r, uint32(off/bs), uint32((end+bs-1)/bs), p); err != nil {
		return err
	}
	if uint64(end) > r.size() && len(p) > 0 {
		r.setSize(uint64(end))
	}
	now := time.Now()
	r.setMtime(now)
	r.setCtime(now)
	if len(p) == 0 {
		return f.storeRaw(r)
	}
	exts, _, err := f.loadExtents(r)
	if err != nil {
		return err
	}
	buf := make([]byte, bs)
	for pos := off; pos < end; {
		lblk := uint32(pos / bs)
		in := pos % bs
		n := min(bs-in, end-pos)
		pblk := lookupExtent(exts, lblk)
		if pblk == 0 {
			return fmt.Errorf("ext: inode %d: block %d not mapped after allocation: %w", r.ino, lblk, syscall.EIO)
		}
		b := p[pos-off : pos-off+n]
		if n < bs {
			if err := f.readDev(buf, int64(pblk)*bs); err != nil {
				return err
			}
			copy(buf[in:], b)
			b = buf
		}
		if err := f.writeBlock(pblk, b); err != nil {
			return err
		}
		pos += n
	}
	return f.storeRaw(r)
}

// mapRange allocates blocks for the unmapped logical blocks in [from,
// to), zeroing the parts of them p will not cover, and stores the new
// extent tree in r (not yet written). On failure the new blocks go back.
func (f *FS) mapRange(r *rino, from, to uint32, p []byte) error {
	exts, leaves, err := f.loadExtents(r)
	if err != nil {
		return err
	}
	if err := refuseUnwritten(r.ino, exts); err != nil {
		return err
	}
	var added []extent
	undo := func(err error) error {
		for _, e := range added {
			f.freeBlocks(e.pblk, uint64(e.n))
		}
		return err
	}
	goal := uint64(0)
	for lblk := from; lblk < to; {
		if pb := lookupExtent(exts, lblk); pb != 0 {
			goal = pb + 1
			lblk++
			continue
		}
		if goal == 0 {
			goal = f.goalFor(r, exts, lblk)
		}
		run := uint32(1)
		for lblk+run < to && run < maxExtentLen && lookupExtent(exts, lblk+run) == 0 {
			run++
		}
		pb, got, err := f.allocBlocks(goal, uint64(run))
		if err != nil {
			return undo(err)
		}
		e := extent{lblk: lblk, n: uint32(got), pblk: pb}
		added = append(added, e)
		exts = append(exts, e)
		// New blocks start as zeros: only whole blocks p covers skip this.
		zero := make([]byte, f.sb.blockSize)
		for i := uint64(0); i < got; i++ {
			if err := f.writeBlock(pb+i, zero); err != nil {
				return undo(err)
			}
		}
		goal = pb + got
		lblk += uint32(got)
	}
	if len(added) == 0 {
		return nil
	}
	if err := f.storeExtents(r, exts, leaves); err != nil {
		return undo(err)
	}
	return nil
}

// goalFor picks where to look for a new block: after the extent before
// lblk, else in the inode's own group.
func (f *FS) goalFor(r *rino, exts []extent, lblk uint32) uint64 {
	best := uint64(0)
	for _, e := range exts {
		if e.lblk < lblk {
			best = e.pblk + uint64(e.n)
		}
	}
	if best != 0 {
		return best
	}
	g := uint64((r.ino - 1) / f.sb.inodesPerGroup)
	return f.sb.firstDataBlock + g*uint64(f.sb.blocksPerGroup)
}

// Truncate sets the size: shrinking frees the blocks past it and zeroes
// the rest of the last block; growing leaves a hole.
func (f *FS) Truncate(ino volume.Ino, size int64) error {
	if _, err := f.begin(); err != nil {
		return err
	}
	defer f.end()
	r, err := f.fileForWrite(ino)
	if err != nil {
		return err
	}
	bs := f.sb.blockSize
	if size < 0 || (size+bs-1)/bs >= 1<<32-1 {
		return fmt.Errorf("ext: inode %d: size %d: %w", ino, size, syscall.EFBIG)
	}
	if uint64(size) < r.size() {
		if err := f.shrink(r, size); err != nil {
			return err
		}
	}
	r.setSize(uint64(size))
	now := time.Now()
	r.setMtime(now)
	r.setCtime(now)
	return f.storeRaw(r)
}

func (f *FS) shrink(r *rino, size int64) error {
	bs := f.sb.blockSize
	exts, leaves, err := f.loadExtents(r)
	if err != nil {
		return err
	}
	if err := refuseUnwritten(r.ino, exts); err != nil {
		return err
	}
	cut := uint32((size + bs - 1) / bs)
	var keep []extent
	for _, e := range exts {
		switch {
		case e.lblk >= cut:
			err = f.freeBlocks(e.pblk, uint64(e.n))
		case e.lblk+e.n > cut:
			n := cut - e.lblk
			err = f.freeBlocks(e.pblk+uint64(n), uint64(e.n-n))
			e.n = n
			keep = append(keep, e)
		default:
			keep = append(keep, e)
		}
		if err != nil {
			return err
		}
	}
	if err := f.storeExtents(r, keep, leaves); err != nil {
		return err
	}
	if in := size % bs; in != 0 {
		if pb := lookupExtent(keep, uint32(size/bs)); pb != 0 {
			buf := make([]byte, bs)
			if err := f.readDev(buf, int64(pb)*bs); err != nil {
				return err
			}
			clear(buf[in:])
			return f.writeBlock(pb, buf)
		}
	}
	return nil
}
