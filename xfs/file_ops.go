package xfs

import (
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// Inode core fields the writer changes (xfs_dinode, v3).
const (
	diAtime       = 32
	diMtime       = 40
	diCtime       = 48
	diSize        = 56
	diNblocks     = 64
	diNextents    = 76
	diBigNextents = 24
	diForkoff     = 82
	diFlags       = 90
	diCRC         = 100
	diChangecount = 104
	diFlags2      = 120
	diCore3       = 176
	diCore2       = 100

	diflagImmutable = 0x8
	diflagAppend    = 0x10
	diflag2Reflink  = 0x2 // XFS_DIFLAG2_REFLINK (bit 1; bit 0 is DAX)
)

// rawInode is an inode's on-disk bytes being changed by one operation.
type rawInode struct {
	ino uint64
	off int64
	b   []byte
	ex  []extent
	// remap: the extent list changed (a directory made a block)
	remap bool
	// bmbt: the blocks of the data fork's B+tree below its root
	bmbt []uint64
	// mapped: layoutMap wrote ex into the fork (bmbt.go)
	mapped bool
	// abmbt: the blocks of the attribute fork's B+tree below its root
	abmbt []uint64
}

// loadRaw reads inode ino for changing: a regular file whose data fork
// is an extent list or B+tree (only extent lists change their map).
func (f *FS) loadRaw(ino uint64) (*rawInode, error) {
	in, err := f.readInode(ino)
	if err != nil {
		return nil, errno(err)
	}
	if in.version != f.inodeVersion() {
		return nil, fmt.Errorf("xfs: inode %d is version %d on a v%d file system, which offvm does not change: %w", ino, in.version, f.sb.version, syscall.EOPNOTSUPP)
	}
	off, _ := f.sb.inoToByte(ino)
	r := &rawInode{ino: ino, off: off, b: make([]byte, f.sb.inodeSize)}
	if _, err := f.dev.ReadAt(r.b, off); err != nil {
		return nil, fmt.Errorf("xfs: reading inode %d: %w", ino, err)
	}
	if in.format == fmtExtents || in.format == fmtBtree {
		if r.ex, err = f.forkExtents(in, in.dfork, in.format, in.nextents); err != nil {
			return nil, errno(err)
		}
	}
	if in.format == fmtBtree {
		if r.bmbt, err = f.bmbtTreeBlocks(in, in.dfork); err != nil {
			return nil, errno(err)
		}
	}
	if in.aformat == fmtBtree && in.afork != nil {
		if r.abmbt, err = f.bmbtTreeBlocks(in, in.afork); err != nil {
			return nil, errno(err)
		}
	}
	return r, nil
}

func (r *rawInode) mode() uint16  { return be.Uint16(r.b[2:]) }
func (r *rawInode) format() uint8 { return r.b[5] }
func (r *rawInode) size() int64   { return int64(be.Uint64(r.b[diSize:])) }
func (r *rawInode) flags2() uint64 {
	if r.b[4] != 3 { // v2 inodes have none
		return 0
	}
	return be.Uint64(r.b[diFlags2:])
}

// dataCheck refuses content changes the writer cannot make safely.
func (r *rawInode) dataCheck() error {
	switch {
	case r.mode()&syscall.S_IFMT == syscall.S_IFDIR:
		return syscall.EISDIR
	case r.mode()&syscall.S_IFMT != syscall.S_IFREG:
		return syscall.EINVAL
	case be.Uint16(r.b[diFlags:])&(diflagImmutable|diflagAppend) != 0:
		return fmt.Errorf("xfs: inode %d is immutable or append-only: %w", r.ino, syscall.EPERM)
	case r.format() != fmtExtents && r.format() != fmtBtree:
		return fmt.Errorf("xfs: inode %d has data fork format %d: %w", r.ino, r.format(), syscall.EOPNOTSUPP)
	}
	return nil
}

// putTime stores t at off in the inode's own timestamp encoding.
func (r *rawInode) putTime(off int, t time.Time) {
	if r.flags2()&flags2Bigtime != 0 {
		be.PutUint64(r.b[off:], uint64(t.Unix()+1<<31)*1e9+uint64(t.Nanosecond()))
		return
	}
	be.PutUint32(r.b[off:], uint32(int32(t.Unix())))
	be.PutUint32(r.b[off+4:], uint32(t.Nanosecond()))
}

// queue puts the inode, CRC recomputed, into t. A changed extent map
// must have been written into the fork by layoutMap (which may need
// blocks for a B+tree, so it runs before the free space is queued).
func (r *rawInode) queue(f *FS, t *txn, mapChanged bool) error {
	if mapChanged && !r.mapped && r.mode() != 0 {
		return fmt.Errorf("xfs: inode %d: extent map changed but not laid out: %w", r.ino, syscall.EIO)
	}
	if r.b[4] == 3 {
		be.PutUint64(r.b[diChangecount:], be.Uint64(r.b[diChangecount:])+1)
	}
	t.putCRC(r.off, r.b, diCRC)
	return nil
}

func encodeExtent(b []byte, e extent) {
	hi := e.off<<9 | e.start>>43
	if e.unwritten {
		hi |= 1 << 63
	}
	be.PutUint64(b, hi)
	be.PutUint64(b[8:], e.start<<21|e.count)
}

// mergeExtents joins neighbours contiguous in the file and on disk.
func mergeExtents(ex []extent) []extent {
	sort.Slice(ex, func(i, j int) bool { return ex[i].off < ex[j].off })
	var out []extent
	for _, e := range ex {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.off+p.count == e.off && p.start+p.count == e.start && p.unwritten == e.unwritten && p.count+e.count <= maxExtentLen {
				p.count += e.count
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func (f *FS) WriteAt(ino volume.Ino, p []byte, off int64) (int, error) {
	if _, err := f.begin(); err != nil {
		return 0, err
	}
	defer f.end(uint64(ino))
	if off < 0 || off+int64(len(p)) < off || off+int64(len(p)) > 1<<62 {
		return 0, syscall.EINVAL
	}
	r, err := f.loadRaw(uint64(ino))
	if err != nil {
		return 0, err
	}
	if err := r.dataCheck(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	bs := f.sb.blockSize
	oldSize := r.size()
	sp := f.newSpace()
	t := &txn{f: f}
	// zero what lies between the old end and the write in the old last
	// block, so that bytes past EOF never show through the new size
	if off > oldSize && oldSize%bs != 0 {
		if err := f.zeroRange(r, t, oldSize, min(off, (oldSize/bs+1)*bs)); err != nil {
			return 0, err
		}
	}
	from, to := uint64(off/bs), uint64((off+int64(len(p))+bs-1)/bs)
	fresh, err := f.mapRange(r, sp, from, to)
	if err != nil {
		return 0, err
	}
	var copies []cowCopy
	rc := sp.refcounts()
	if r.flags2()&diflag2Reflink != 0 {
		if copies, err = f.unshare(r, sp, rc, from, to); err != nil {
			return 0, err
		}
	}
	now := time.Now()
	r.putTime(diMtime, now)
	r.putTime(diCtime, now)
	if end := off + int64(len(p)); end > oldSize {
		be.PutUint64(r.b[diSize:], uint64(end))
	}
	if err := f.queueContent(r, t, fresh, p, off); err != nil {
		return 0, err
	}
	remapped := len(fresh) > 0 || len(copies) > 0
	if remapped {
		if err := f.layoutMap(r, sp, t); err != nil {
			return 0, err
		}
	}
	if err := rc.queue(t); err != nil {
		return 0, err
	}
	if err := sp.queue(t); err != nil {
		return 0, err
	}
	t.putSuper(f.w, sp.delta, 0)
	if err := r.queue(f, t, remapped); err != nil {
		return 0, err
	}
	// new blocks are filled before anything names them
	if err := f.copyBlocks(copies); err != nil {
		return 0, err
	}
	if err := f.fillFresh(fresh, p, off); err != nil {
		return 0, err
	}
	if err := t.commit(); err != nil {
		return 0, err
	}
	f.w.committed(sp.delta, 0)
	return len(p), nil
}

// mapRange makes file blocks [from, to) mapped to written blocks,
// allocating holes. It returns the new extents (whose blocks hold
// garbage until written whole). Unwritten extents in the range are
// refused: converting them is not done.
func (f *FS) mapRange(r *rawInode, sp *space, from, to uint64) ([]extent, error) {
	var fresh []extent
	for blk := from; blk < to; {
		i, in := lookupExtent(r.ex, blk)
		if in {
			e := r.ex[i]
			if e.unwritten {
				return nil, fmt.Errorf("xfs: inode %d: writing into preallocated (unwritten) blocks is not done by offvm: %w", r.ino, syscall.EOPNOTSUPP)
			}
			blk = e.off + e.count
			continue
		}
		end := to
		if i < len(r.ex) {
			end = min(end, r.ex[i].off)
		}
		var goal uint64
		if i > 0 {
			goal = r.ex[i-1].start + r.ex[i-1].count + (blk - r.ex[i-1].off - r.ex[i-1].count)
		}
		start, n, err := sp.alloc(goal, end-blk, dataOwner(r.ino, blk))
		if err != nil {
			return nil, err
		}
		e := extent{off: blk, start: start, count: n}
		fresh = append(fresh, e)
		r.ex = append(r.ex, e)
		sort.Slice(r.ex, func(a, b int) bool { return r.ex[a].off < r.ex[b].off })
		blk += n
	}
	if len(fresh) > 0 {
		be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+sumBlocks(fresh))
	}
	return fresh, nil
}

func sumBlocks(ex []extent) uint64 {
	var n uint64
	for _, e := range ex {
		n += e.count
	}
	return n
}

// fillFresh writes new extents whole: p where it covers them, zeros
// around it.
func (f *FS) fillFresh(fresh []extent, p []byte, off int64) error {
	bs := f.sb.blockSize
	for _, e := range fresh {
		buf := make([]byte, int64(e.count)*bs)
		lo, hi := int64(e.off)*bs, int64(e.off+e.count)*bs
		s, t := max(lo, off), min(hi, off+int64(len(p)))
		copy(buf[s-lo:], p[s-off:t-off])
		dst, ok := f.sb.fsbToByte(e.start)
		if !ok {
			return fmt.Errorf("xfs: allocated block %d outside the file system: %w", e.start, ErrCorrupt)
		}
		if err := f.writeData(buf, dst); err != nil {
			return err
		}
	}
	return nil
}

// queueContent puts the part of p that lands in blocks already mapped
// into t, so that a failed operation puts the old bytes back.
func (f *FS) queueContent(r *rawInode, t *txn, fresh []extent, p []byte, off int64) error {
	return f.eachMapped(r, off, off+int64(len(p)), fresh, func(dev int64, a, b int64) error {
		t.put(dev, p[a-off:b-off])
		return nil
	})
}

// eachMapped calls fn for every run of [from, to) held by an existing
// written extent (not in skip) with the device offset and file range.
func (f *FS) eachMapped(r *rawInode, from, to int64, skip []extent, fn func(dev, a, b int64) error) error {
	bs := f.sb.blockSize
	for _, e := range r.ex {
		if e.unwritten || containsExtent(skip, e) {
			continue
		}
		lo, hi := max(from, int64(e.off)*bs), min(to, int64(e.off+e.count)*bs)
		if lo >= hi {
			continue
		}
		base, ok := f.sb.fsbToByte(e.start)
		if !ok {
			return fmt.Errorf("xfs: inode %d: extent at block %d outside the file system: %w", r.ino, e.start, ErrCorrupt)
		}
		if err := fn(base+lo-int64(e.off)*bs, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

func containsExtent(ex []extent, e extent) bool {
	for _, x := range ex {
		if x == e {
			return true
		}
	}
	return false
}

// zeroRange queues zeros over file bytes [from, to) where blocks hold them.
func (f *FS) zeroRange(r *rawInode, t *txn, from, to int64) error {
	return f.eachMapped(r, from, to, nil, func(dev, a, b int64) error {
		t.put(dev, make([]byte, b-a))
		return nil
	})
}

func (f *FS) Truncate(ino volume.Ino, size int64) error {
	if _, err := f.begin(); err != nil {
		return err
	}
	defer f.end(uint64(ino))
	if size < 0 || size > 1<<62 {
		return syscall.EINVAL
	}
	r, err := f.loadRaw(uint64(ino))
	if err != nil {
		return err
	}
	if err := r.dataCheck(); err != nil {
		return err
	}
	bs := f.sb.blockSize
	old := r.size()
	sp := f.newSpace()
	rc := sp.refcounts()
	t := &txn{f: f}
	var copies []cowCopy
	// zeroTail zeroes [from, to) in one block, given its own first when shared
	zeroTail := func(from, to int64) error {
		if r.flags2()&diflag2Reflink != 0 {
			if copies, err = f.unshare(r, sp, rc, uint64(from/bs), uint64(from/bs)+1); err != nil {
				return err
			}
		}
		return f.zeroRange(r, t, from, to)
	}
	mapChanged := false
	switch {
	case size > old && old%bs != 0:
		if err := zeroTail(old, min(size, (old/bs+1)*bs)); err != nil {
			return err
		}
	case size <= old:
		// the kernel zeroes the new last block's tail so that a later
		// extension reads zeros
		if size%bs != 0 {
			if err := zeroTail(size, min(old, (size/bs+1)*bs)); err != nil {
				return err
			}
		}
		keep := uint64((size + bs - 1) / bs)
		if mapChanged, err = f.cutExtents(r, rc, keep); err != nil {
			return err
		}
	}
	mapChanged = mapChanged || len(copies) > 0
	be.PutUint64(r.b[diSize:], uint64(size))
	now := time.Now()
	r.putTime(diMtime, now)
	r.putTime(diCtime, now)
	if mapChanged {
		if err := f.layoutMap(r, sp, t); err != nil {
			return err
		}
	}
	if err := rc.queue(t); err != nil {
		return err
	}
	if err := sp.queue(t); err != nil {
		return err
	}
	t.putSuper(f.w, sp.delta, 0)
	if err := r.queue(f, t, mapChanged); err != nil {
		return err
	}
	if err := f.copyBlocks(copies); err != nil { // before anything names them
		return err
	}
	if err := t.commit(); err != nil {
		return err
	}
	f.w.committed(sp.delta, 0)
	return nil
}

// cutExtents frees every block from file block keep on, as the kernel's
// truncate does (preallocation past the old end included); shared
// blocks of a reflinked file lose an owner instead.
func (f *FS) cutExtents(r *rawInode, rc *refcounts, keep uint64) (bool, error) {
	var out []extent
	var freed uint64
	for _, e := range r.ex {
		switch {
		case e.off+e.count <= keep:
			out = append(out, e)
			continue
		case e.off < keep:
			k := keep - e.off
			out = append(out, extent{off: e.off, start: e.start, count: k, unwritten: e.unwritten})
			e = extent{off: keep, start: e.start + k, count: e.count - k}
		}
		if err := rc.release(r, e.start, e.count, e.off); err != nil {
			return false, err
		}
		freed += e.count
	}
	if freed == 0 {
		return false, nil
	}
	r.ex = out
	be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])-freed)
	return true, nil
}

func (f *FS) SetTimes(ino volume.Ino, atime, mtime *time.Time) error {
	if _, err := f.begin(); err != nil {
		return err
	}
	defer f.end(uint64(ino))
	r, err := f.loadRaw(uint64(ino))
	if err != nil {
		return err
	}
	if atime != nil {
		r.putTime(diAtime, *atime)
	}
	if mtime != nil {
		r.putTime(diMtime, *mtime)
	}
	r.putTime(diCtime, time.Now())
	t := &txn{f: f}
	if err := r.queue(f, t, false); err != nil {
		return err
	}
	return t.commit()
}
