package ext

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/offvm/offvm/internal/alloc"
)

// Descriptor field access: a 16/32-bit low half and, with 64bit, a high
// half further on.
func (w *writer) dget(g uint32, lo, hi, bits int) uint64 {
	le := binary.LittleEndian
	d := w.gd[g]
	var v uint64
	if bits == 16 {
		v = uint64(le.Uint16(d[lo:]))
		if len(d) >= 64 {
			v |= uint64(le.Uint16(d[hi:])) << 16
		}
	} else {
		v = uint64(le.Uint32(d[lo:]))
		if len(d) >= 64 {
			v |= uint64(le.Uint32(d[hi:])) << 32
		}
	}
	return v
}

func (w *writer) dset(g uint32, lo, hi, bits int, v uint64) {
	le := binary.LittleEndian
	d := w.gd[g]
	if bits == 16 {
		le.PutUint16(d[lo:], uint16(v))
		if len(d) >= 64 {
			le.PutUint16(d[hi:], uint16(v>>16))
		}
	} else {
		le.PutUint32(d[lo:], uint32(v))
		if len(d) >= 64 {
			le.PutUint32(d[hi:], uint32(v>>32))
		}
	}
}

func (w *writer) blockBitmap(g uint32) uint64 { return w.dget(g, 0, 0x20, 32) }
func (w *writer) inodeBitmap(g uint32) uint64 { return w.dget(g, 4, 0x24, 32) }
func (w *writer) flags(g uint32) uint16       { return binary.LittleEndian.Uint16(w.gd[g][0x12:]) }
func (w *writer) setFlags(g uint32, v uint16) { binary.LittleEndian.PutUint16(w.gd[g][0x12:], v) }

// addFree adjusts a group's and the superblock's free counters.
func (w *writer) addFreeBlocks(g uint32, d int64) {
	w.dset(g, 0xC, 0x2C, 16, uint64(int64(w.dget(g, 0xC, 0x2C, 16))+d))
	le := binary.LittleEndian
	v := uint64(le.Uint32(w.sb[12:])) | uint64(le.Uint32(w.sb[0x158:]))<<32
	v = uint64(int64(v) + d)
	le.PutUint32(w.sb[12:], uint32(v))
	if len(w.gd[g]) >= 64 {
		le.PutUint32(w.sb[0x158:], uint32(v>>32))
	}
}

func (w *writer) addFreeInodes(g uint32, d int64) {
	w.dset(g, 0xE, 0x2E, 16, uint64(int64(w.dget(g, 0xE, 0x2E, 16))+d))
	le := binary.LittleEndian
	le.PutUint32(w.sb[16:], uint32(int64(le.Uint32(w.sb[16:]))+d))
}

// bitmapCsum stores a bitmap's checksum in its descriptor.
func (w *writer) bitmapCsum(g uint32, bm []byte, nbits uint32, lo, hi int) {
	if !w.csum {
		return
	}
	c := crc32cRaw(w.seed, bm[:nbits/8])
	le := binary.LittleEndian
	le.PutUint16(w.gd[g][lo:], uint16(c))
	if len(w.gd[g]) >= 64 {
		le.PutUint16(w.gd[g][hi:], uint16(c>>16))
	}
}

// allocInode takes a free inode, in group pref when it has one, and
// returns its number. The inode table slot is zeroed.
func (f *FS) allocInode(pref uint32, dir bool) (uint32, error) {
	w, s := f.w, f.sb
	for k := uint32(0); k < s.groups; k++ {
		g := (pref + k) % s.groups
		if w.dget(g, 0xE, 0x2E, 16) == 0 {
			continue
		}
		ino, err := f.allocInodeIn(g, dir)
		if err != nil || ino != 0 {
			return ino, err
		}
	}
	return 0, fmt.Errorf("ext: no free inode: %w", syscall.ENOSPC)
}

func (f *FS) allocInodeIn(g uint32, dir bool) (uint32, error) {
	w, s := f.w, f.sb
	ipg := s.inodesPerGroup
	var bm []byte
	var err error
	uninit := (w.csum || w.gdtCsum) && w.flags(g)&bgInodeUninit != 0
	if uninit {
		bm = make([]byte, s.blockSize)
		// Bits past the group's inodes are set, as mke2fs leaves them.
		alloc.Bitmap(bm).PutRange(int64(ipg), int64(s.blockSize)*8-int64(ipg), true)
	} else if bm, err = f.readBlock(w.inodeBitmap(g)); err != nil {
		return 0, err
	}
	first := uint32(0)
	if g == 0 {
		first = binary.LittleEndian.Uint32(w.sb[84:]) // s_first_ino
	}
	free := alloc.Bitmap(bm).NextClear(int64(first), int64(ipg))
	if free < 0 {
		return 0, nil
	}
	idx := uint32(free)
	ino := g*ipg + idx + 1
	if ino > s.inodesCount {
		return 0, nil
	}
	used := ipg
	if w.csum || w.gdtCsum {
		used = ipg - uint32(w.dget(g, 0x1C, 0x32, 16))
		if uninit {
			used = 0
		}
	}
	// Slots from the old end of the used part up to ours may never have
	// been written (lazy_itable_init): zero them.
	zero := make([]byte, s.inodeSize)
	for i := min(used, idx); i <= idx; i++ {
		if i >= used || i == idx {
			if err := f.writeDev(zero, f.inodeOffset(g, i)); err != nil {
				return 0, err
			}
		}
	}
	alloc.Bitmap(bm).Put(int64(idx), true)
	if err := f.writeBlock(w.inodeBitmap(g), bm); err != nil {
		return 0, err
	}
	w.bitmapCsum(g, bm, ipg, 0x1A, 0x3A)
	if uninit {
		w.setFlags(g, w.flags(g)&^bgInodeUninit)
	}
	if w.csum || w.gdtCsum {
		w.dset(g, 0x1C, 0x32, 16, uint64(ipg-max(used, idx+1)))
		atomic.StoreUint32(&f.groups[g].usedInodes, max(used, idx+1))
	}
	w.addFreeInodes(g, -1)
	if dir {
		w.dset(g, 0x10, 0x30, 16, w.dget(g, 0x10, 0x30, 16)+1)
	}
	if err := f.flushDesc(g); err != nil {
		return 0, err
	}
	return ino, f.flushSuper()
}

func (f *FS) inodeOffset(g, idx uint32) int64 {
	return int64(f.groups[g].inodeTable)*f.sb.blockSize + int64(idx)*f.sb.inodeSize
}

// freeInode clears ino's bitmap bit.
func (f *FS) freeInode(ino uint32, dir bool) error {
	w, s := f.w, f.sb
	g, idx := (ino-1)/s.inodesPerGroup, (ino-1)%s.inodesPerGroup
	bm, err := f.readBlock(w.inodeBitmap(g))
	if err != nil {
		return err
	}
	if !alloc.Bitmap(bm).Get(int64(idx)) {
		return fmt.Errorf("ext: inode %d is already free: %w", ino, syscall.EIO)
	}
	alloc.Bitmap(bm).Put(int64(idx), false)
	if err := f.writeBlock(w.inodeBitmap(g), bm); err != nil {
		return err
	}
	w.bitmapCsum(g, bm, s.inodesPerGroup, 0x1A, 0x3A)
	w.addFreeInodes(g, 1)
	if dir {
		w.dset(g, 0x10, 0x30, 16, w.dget(g, 0x10, 0x30, 16)-1)
	}
	if err := f.flushDesc(g); err != nil {
		return err
	}
	return f.flushSuper()
}

// allocBlocks takes up to n free blocks in one run, starting the search
// at goal, and returns the first and how many. Groups whose bitmap was
// never initialised (BLOCK_UNINIT) are passed over: their bitmap would
// have to be built from the group's metadata layout.
func (f *FS) allocBlocks(goal uint64, n uint64) (uint64, uint64, error) {
	w, s := f.w, f.sb
	bpg := uint64(s.blocksPerGroup)
	if goal < s.firstDataBlock || goal >= s.blocksCount {
		goal = s.firstDataBlock
	}
	g0 := uint32((goal - s.firstDataBlock) / bpg)
	for k := uint32(0); k <= s.groups; k++ {
		g := (g0 + k) % s.groups
		if w.dget(g, 0xC, 0x2C, 16) == 0 || (w.csum || w.gdtCsum) && w.flags(g)&bgBlockUninit != 0 {
			continue
		}
		start := uint64(0)
		if k == 0 {
			start = (goal - s.firstDataBlock) % bpg
		}
		p, got, err := f.allocBlocksIn(g, start, n)
		if err != nil || got != 0 {
			return p, got, err
		}
	}
	return 0, 0, fmt.Errorf("ext: no free block: %w", syscall.ENOSPC)
}

func (f *FS) allocBlocksIn(g uint32, start, n uint64) (uint64, uint64, error) {
	w, s := f.w, f.sb
	bpg := uint64(s.blocksPerGroup)
	base := s.firstDataBlock + uint64(g)*bpg
	limit := min(bpg, s.blocksCount-base)
	bm, err := f.readBlock(w.blockBitmap(g))
	if err != nil {
		return 0, 0, err
	}
	bits := alloc.Bitmap(bm)
	for pass := 0; pass < 2; pass++ {
		from, to := start, limit
		if pass == 1 {
			from, to = 0, start
		}
		i := bits.NextClear(int64(from), int64(to))
		if i < 0 {
			continue
		}
		_, got := bits.ClearRun(i, int64(limit), int64(n))
		bits.PutRange(i, got, true)
		if err := f.writeBlock(w.blockBitmap(g), bm); err != nil {
			return 0, 0, err
		}
		w.bitmapCsum(g, bm, s.blocksPerGroup, 0x18, 0x38)
		w.addFreeBlocks(g, -got)
		if err := f.flushDesc(g); err != nil {
			return 0, 0, err
		}
		return base + uint64(i), uint64(got), f.flushSuper()
	}
	return 0, 0, nil
}

// freeBlocks returns a run of blocks to the bitmap, group by group.
func (f *FS) freeBlocks(p, n uint64) error {
	w, s := f.w, f.sb
	bpg := uint64(s.blocksPerGroup)
	for n > 0 {
		if p < s.firstDataBlock || p+n > s.blocksCount {
			return fmt.Errorf("ext: freeing blocks %d+%d outside the file system: %w", p, n, syscall.EIO)
		}
		g := uint32((p - s.firstDataBlock) / bpg)
		i := (p - s.firstDataBlock) % bpg
		cnt := min(n, bpg-i)
		bm, err := f.readBlock(w.blockBitmap(g))
		if err != nil {
			return err
		}
		bits := alloc.Bitmap(bm)
		if !bits.AllSet(int64(i), int64(cnt)) {
			return fmt.Errorf("ext: blocks %d+%d are already free in part: %w", p, cnt, syscall.EIO)
		}
		bits.PutRange(int64(i), int64(cnt), false)
		if err := f.writeBlock(w.blockBitmap(g), bm); err != nil {
			return err
		}
		w.bitmapCsum(g, bm, s.blocksPerGroup, 0x18, 0x38)
		w.addFreeBlocks(g, int64(cnt))
		if err := f.flushDesc(g); err != nil {
			return err
		}
		p, n = p+cnt, n-cnt
	}
	return f.flushSuper()
}
