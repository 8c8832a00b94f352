package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// Reflinked files share extents; the AG's refcount B+tree holds a
// record for every run of blocks more than one file maps (a block with
// no record has one owner). A write into a shared run is done as the
// kernel's copy-on-write ends: the written blocks get new blocks (their
// old bytes copied first), the file maps them instead, and the old
// run's count drops by one (its record goes when one owner is left).
// The other files keep the old blocks, untouched. The tree is read whole
// and laid out again from its records, its blocks from the AG's free
// space, as the inode B+trees are.

// AGF fields of the refcount B+tree.
const (
	agfRefcBlocks = 84
	agfRefcRoot   = 88
	agfRefcLevel  = 92
	refcCowFlag   = 1 << 31 // a CoW staging extent's startblock
)

var kindRefc = sbtKind{magic: "R3FC", recLen: 12, keyLen: 4, owner: ownRefc}

// rrec is one refcount record: blocks [start, start+count) have refs owners.
type rrec struct{ start, count, refs uint32 }

type agRefc struct {
	tree    *sbTree
	recs    []rrec // by start
	changed bool
}

// refcounts is one operation's view of the refcount B+trees.
type refcounts struct {
	sp  *space
	ags map[uint32]*agRefc
}

func (s *space) refcounts() *refcounts { return &refcounts{sp: s, ags: map[uint32]*agRefc{}} }

func (rc *refcounts) ag(ag uint32) (*agRefc, error) {
	if a, ok := rc.ags[ag]; ok {
		return a, nil
	}
	f := rc.sp.f
	fa, err := rc.sp.ag(ag)
	if err != nil {
		return nil, err
	}
	tr, err := f.readSbt(ag, be.Uint32(fa.agf[agfRefcRoot:]), int(be.Uint32(fa.agf[agfRefcLevel:])), kindRefc)
	if err != nil {
		return nil, err
	}
	a := &agRefc{tree: tr}
	for i, b := range tr.recs {
		r := rrec{be.Uint32(b), be.Uint32(b[4:]), be.Uint32(b[8:])}
		switch {
		case r.start&refcCowFlag != 0:
			return nil, fmt.Errorf("xfs: AG %d holds copy-on-write staging extents (a crash during a reflink write); mount it once to clean them: %w", ag, syscall.EOPNOTSUPP)
		case r.count == 0 || r.refs < 2 || uint64(r.start)+uint64(r.count) > f.sb.agBlocks ||
			(i > 0 && a.recs[i-1].start+a.recs[i-1].count > r.start):
			return nil, fmt.Errorf("xfs: AG %d: refcount record %d+%d (%d owners) out of order or range: %w", ag, r.start, r.count, r.refs, ErrCorrupt)
		}
		a.recs = append(a.recs, r)
	}
	if int(be.Uint32(fa.agf[agfRefcBlocks:])) != len(tr.blocks) {
		return nil, fmt.Errorf("xfs: AGF %d: refcount B+tree block count disagrees with the tree: %w", ag, ErrCorrupt)
	}
	rc.ags[ag] = a
	return a, nil
}

// shared is the runs of file system blocks [fsb, fsb+n) that more than
// one file maps, in order.
func (rc *refcounts) shared(fsb, n uint64) ([]extent, error) {
	f := rc.sp.f
	ag, bno := uint32(fsb>>f.sb.agBlkLog), uint32(fsb&(1<<f.sb.agBlkLog-1))
	a, err := rc.ag(ag)
	if err != nil {
		return nil, err
	}
	var out []extent
	end := bno + uint32(n)
	for _, r := range a.recs {
		lo, hi := max(r.start, bno), min(r.start+r.count, end)
		if lo < hi {
			out = append(out, extent{start: uint64(ag)<<f.sb.agBlkLog | uint64(lo), count: uint64(hi - lo)})
		}
	}
	return out, nil
}

// drop takes one owner from blocks [fsb, fsb+n), all of them shared:
// records are split at the run's ends and those left with one owner go.
func (rc *refcounts) drop(fsb, n uint64) error {
	f := rc.sp.f
	ag, bno := uint32(fsb>>f.sb.agBlkLog), uint32(fsb&(1<<f.sb.agBlkLog-1))
	a, err := rc.ag(ag)
	if err != nil {
		return err
	}
	end := bno + uint32(n)
	var out []rrec
	for _, r := range a.recs {
		lo, hi := max(r.start, bno), min(r.start+r.count, end)
		if lo >= hi {
			out = append(out, r)
			continue
		}
		if r.start < lo {
			out = append(out, rrec{r.start, lo - r.start, r.refs})
		}
		if r.refs > 2 {
			out = append(out, rrec{lo, hi - lo, r.refs - 1})
		}
		if r.start+r.count > hi {
			out = append(out, rrec{hi, r.start + r.count - hi, r.refs})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	a.recs, a.changed = out, true
	return nil
}

// release gives back blocks [fsb, fsb+n) that r no longer maps from
// file block off: runs other files share lose an owner, the rest is freed.
func (rc *refcounts) release(r *rawInode, fsb, n, off uint64) error {
	if r.flags2()&diflag2Reflink == 0 {
		return rc.sp.free(fsb, n, dataOwner(r.ino, off))
	}
	if err := rc.sp.unmap(fsb, n, dataOwner(r.ino, off)); err != nil {
		return err
	}
	runs, err := rc.shared(fsb, n)
	if err != nil {
		return err
	}
	next := fsb
	for _, s := range append(runs, extent{start: fsb + n}) {
		if s.start > next {
			if err := rc.sp.freeUnmapped(next, s.start-next); err != nil {
				return err
			}
		}
		if s.count > 0 {
			if err := rc.drop(s.start, s.count); err != nil {
				return err
			}
		}
		next = s.start + s.count
	}
	return nil
}

// queue lays the changed trees out again and sets their AGFs' root,
// level and block count; it runs before the free space is queued.
func (rc *refcounts) queue(t *txn) error {
	f := rc.sp.f
	for ag := uint32(0); ag < f.sb.agCount; ag++ {
		a, ok := rc.ags[ag]
		if !ok || !a.changed {
			continue
		}
		raw := make([][]byte, len(a.recs))
		for i, r := range a.recs {
			b := make([]byte, kindRefc.recLen)
			be.PutUint32(b, r.start)
			be.PutUint32(b[4:], r.count)
			be.PutUint32(b[8:], r.refs)
			raw[i] = b
		}
		root, lv, err := rc.sp.putTree(t, ag, a.tree, kindRefc, raw)
		if err != nil {
			return err
		}
		fa, err := rc.sp.ag(ag)
		if err != nil {
			return err
		}
		be.PutUint32(fa.agf[agfRefcRoot:], root)
		be.PutUint32(fa.agf[agfRefcLevel:], uint32(lv))
		be.PutUint32(fa.agf[agfRefcBlocks:], uint32(len(a.tree.blocks)))
		fa.changed = true // the AGF is written with the free-space trees
	}
	return nil
}

// cowCopy is one run of old blocks copied to new ones before the write.
type cowCopy struct{ from, to, count uint64 }

// unshare gives file blocks [from, to) of r that other files share new
// blocks of their own, copying the old bytes over: it returns the copies
// to make (before anything names the new blocks) and whether r's map
// changed.
func (f *FS) unshare(r *rawInode, sp *space, rc *refcounts, from, to uint64) ([]cowCopy, error) {
	var copies []cowCopy
	for _, e := range append([]extent(nil), r.ex...) {
		lo, hi := max(from, e.off), min(to, e.off+e.count)
		if lo >= hi || e.unwritten {
			continue
		}
		runs, err := rc.shared(e.start+lo-e.off, hi-lo)
		if err != nil {
			return nil, err
		}
		for _, s := range runs {
			fb := e.off + s.start - e.start // the file block the run starts at
			for done := uint64(0); done < s.count; {
				start, n, err := sp.alloc(s.start+s.count, s.count-done, dataOwner(r.ino, fb+done))
				if err != nil {
					return nil, err
				}
				copies = append(copies, cowCopy{s.start + done, start, n})
				r.ex = remapExtents(r.ex, fb+done, n, start)
				done += n
			}
			if err := rc.drop(s.start, s.count); err != nil {
				return nil, err
			}
			if err := sp.unmap(s.start, s.count, dataOwner(r.ino, fb)); err != nil {
				return nil, err
			}
			r.remap = true
		}
	}
	return copies, nil
}

// remapExtents maps file blocks [fb, fb+n) to blocks from start instead.
func remapExtents(ex []extent, fb, n, start uint64) []extent {
	var out []extent
	for _, e := range ex {
		if e.off+e.count <= fb || e.off >= fb+n {
			out = append(out, e)
			continue
		}
		if e.off < fb {
			out = append(out, extent{off: e.off, start: e.start, count: fb - e.off, unwritten: e.unwritten})
		}
		lo, hi := max(fb, e.off), min(fb+n, e.off+e.count)
		out = append(out, extent{off: lo, start: start + lo - fb, count: hi - lo, unwritten: e.unwritten})
		if end := e.off + e.count; end > fb+n {
			out = append(out, extent{off: fb + n, start: e.start + fb + n - e.off, count: end - fb - n, unwritten: e.unwritten})
		}
	}
	return out
}

// copyBlocks makes the copies of unshare, block runs read and written whole.
func (f *FS) copyBlocks(copies []cowCopy) error {
	bs := f.sb.blockSize
	for _, c := range copies {
		src, ok1 := f.sb.fsbToByte(c.from)
		dst, ok2 := f.sb.fsbToByte(c.to)
		if !ok1 || !ok2 {
			return fmt.Errorf("xfs: copy-on-write of blocks %d+%d to %d outside the file system: %w", c.from, c.count, c.to, ErrCorrupt)
		}
		buf := make([]byte, int64(c.count)*bs)
		if _, err := f.dev.ReadAt(buf, src); err != nil {
			return fmt.Errorf("xfs: reading shared blocks %d+%d: %w", c.from, c.count, err)
		}
		if err := f.writeData(buf, dst); err != nil {
			return err
		}
	}
	return nil
}
