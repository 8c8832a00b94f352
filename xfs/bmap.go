package xfs

import (
	"fmt"
	"sort"
)

// extent maps file blocks [off, off+count) to file system block start.
type extent struct {
	off, start, count uint64
	unwritten         bool
}

const (
	maxExtents    = 1 << 24 // a fuzz guard far above real files
	maxBmapLevels = 10      // XFS's own bound is 9 with 64-bit extent counts
	maxBmapBlocks = 1 << 20 // blocks one walk may visit: cycles end here
)

// decodeExtents reads n packed 128-bit extent records.
func decodeExtents(b []byte, n uint64) ([]extent, error) {
	if n > uint64(len(b)/16) {
		return nil, fmt.Errorf("%d extents in %d bytes: %w", n, len(b), ErrCorrupt)
	}
	out := make([]extent, 0, n)
	for i := uint64(0); i < n; i++ {
		hi, lo := be.Uint64(b[i*16:]), be.Uint64(b[i*16+8:])
		e := extent{
			unwritten: hi>>63 != 0,
			off:       hi >> 9 & (1<<54 - 1),
			start:     (hi&0x1ff)<<43 | lo>>21,
			count:     lo & (1<<21 - 1),
		}
		out = append(out, e)
	}
	return out, nil
}

// forkExtents is the extent list of a fork in extents or btree format.
func (f *FS) forkExtents(in *inode, lit []byte, format uint8, n uint64) ([]extent, error) {
	var ex []extent
	var err error
	switch format {
	case fmtExtents:
		ex, err = decodeExtents(lit, n)
	case fmtBtree:
		ex, err = f.btreeExtents(in, lit)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("xfs: inode %d: %w", in.ino, err)
	}
	sort.Slice(ex, func(i, j int) bool { return ex[i].off < ex[j].off })
	for i := 1; i < len(ex); i++ {
		if ex[i-1].off+ex[i-1].count > ex[i].off {
			return nil, fmt.Errorf("xfs: inode %d: overlapping extents at block %d: %w", in.ino, ex[i].off, ErrCorrupt)
		}
	}
	return ex, nil
}

// btreeExtents walks a B+tree-mapped fork: the root in the inode, then
// long-format BMAP/BMA3 blocks down to the leaves' extent records.
func (f *FS) btreeExtents(in *inode, root []byte) ([]extent, error) {
	if len(root) < 4 {
		return nil, fmt.Errorf("bmap root of %d bytes: %w", len(root), ErrCorrupt)
	}
	level, nrecs := be.Uint16(root), int(be.Uint16(root[2:]))
	maxr := (len(root) - 4) / 16
	if level == 0 || level > maxBmapLevels || nrecs > maxr {
		return nil, fmt.Errorf("bmap root level %d with %d of %d records: %w", level, nrecs, maxr, ErrCorrupt)
	}
	var out []extent
	visits := 0
	for i := 0; i < nrecs; i++ {
		ptr := be.Uint64(root[4+maxr*8+i*8:])
		if err := f.bmapBlock(in, ptr, int(level)-1, &out, &visits); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (f *FS) bmapBlock(in *inode, fsb uint64, level int, out *[]extent, visits *int) error {
	if *visits++; *visits > maxBmapBlocks {
		return fmt.Errorf("bmap tree of more than %d blocks: %w", maxBmapBlocks, ErrCorrupt)
	}
	b, err := f.readFSB(fsb, 1)
	if err != nil {
		return err
	}
	hdr := 24
	magic := string(b[:4])
	switch {
	case magic == "BMA3" && f.sb.version == 5:
		hdr = 72
		if !crcOK(b, 64) {
			return fmt.Errorf("bmap block %d: checksum mismatch: %w", fsb, ErrCorrupt)
		}
		if owner := be.Uint64(b[56:]); owner != in.ino {
			return fmt.Errorf("bmap block %d belongs to inode %d: %w", fsb, owner, ErrCorrupt)
		}
	case magic == "BMAP" && f.sb.version == 4:
	default:
		return fmt.Errorf("bmap block %d: magic %q: %w", fsb, magic, ErrCorrupt)
	}
	if got := int(be.Uint16(b[4:])); got != level {
		return fmt.Errorf("bmap block %d: level %d, expected %d: %w", fsb, got, level, ErrCorrupt)
	}
	n := int(be.Uint16(b[6:]))
	body := b[hdr:]
	if level == 0 {
		ex, err := decodeExtents(body, uint64(n))
		if err != nil {
			return fmt.Errorf("bmap block %d: %w", fsb, err)
		}
		if len(*out)+len(ex) > maxExtents {
			return fmt.Errorf("more than %d extents: %w", maxExtents, ErrCorrupt)
		}
		*out = append(*out, ex...)
		return nil
	}
	maxr := len(body) / 16
	if n > maxr {
		return fmt.Errorf("bmap block %d: %d records: %w", fsb, n, ErrCorrupt)
	}
	for i := 0; i < n; i++ {
		if err := f.bmapBlock(in, be.Uint64(body[maxr*8+i*8:]), level-1, out, visits); err != nil {
			return err
		}
	}
	return nil
}

// readFSB reads count blocks from file system block fsb.
func (f *FS) readFSB(fsb uint64, count int64) ([]byte, error) {
	off, ok := f.sb.fsbToByte(fsb)
	if !ok || count <= 0 || count > 1<<16 {
		return nil, fmt.Errorf("block %d (x%d) outside the file system: %w", fsb, count, ErrCorrupt)
	}
	b := make([]byte, count*f.sb.blockSize)
	if _, err := f.dev.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading block %d: %w", fsb, err)
	}
	return b, nil
}

// lookupExtent finds the extent holding file block blk, or the index of
// the next one when blk is in a hole.
func lookupExtent(ex []extent, blk uint64) (int, bool) {
	i := sort.Search(len(ex), func(i int) bool { return ex[i].off+ex[i].count > blk })
	return i, i < len(ex) && ex[i].off <= blk
}

// readFork reads length bytes of a fork's content from byte off, holes
// and unwritten extents as zeros.
func (f *FS) readFork(ex []extent, p []byte, off int64) error {
	bs := f.sb.blockSize
	for done := 0; done < len(p); {
		pos := off + int64(done)
		blk := uint64(pos / bs)
		i, in := lookupExtent(ex, blk)
		if !in {
			end := int64(len(p) - done)
			if i < len(ex) {
				end = min(end, int64(ex[i].off)*bs-pos)
			}
			clear(p[done : done+int(end)])
			done += int(end)
			continue
		}
		e := ex[i]
		run := min(int64(len(p)-done), int64(e.off+e.count)*bs-pos)
		if e.unwritten {
			clear(p[done : done+int(run)])
		} else {
			dstart, ok := f.sb.fsbToByte(e.start + (blk - e.off))
			if !ok {
				return fmt.Errorf("extent at block %d outside the file system: %w", e.start, ErrCorrupt)
			}
			// a run may cross an AG boundary only in a corrupt file
			// system; read block by block when it would
			if _, ok2 := f.sb.fsbToByte(e.start + e.count - 1); !ok2 {
				return fmt.Errorf("extent %d+%d outside the file system: %w", e.start, e.count, ErrCorrupt)
			}
			if _, err := f.dev.ReadAt(p[done:done+int(run)], dstart+pos%bs); err != nil {
				return fmt.Errorf("reading block %d: %w", e.start, err)
			}
		}
		done += int(run)
	}
	return nil
}
