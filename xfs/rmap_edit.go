package xfs

import (
	"bytes"
	"fmt"
	"math"
	"sort"
)

// Reverse maps (rmapbt): on a file system that has them every AG holds
// a B+tree of who owns each of its used blocks — an inode's data or
// attribute fork at a file offset, an inode's bmbt block, or metadata
// (the AG's own trees and free list, inode B+trees, inode chunks, the
// refcount tree). Every allocation and free of the writer names its
// owner (rmOwner), and the AG's records change as the kernel's
// xfs_rmap_map and xfs_rmap_unmap change them: a new run joins the
// records of the same owner it touches on disk and in the file, a freed
// run is cut out of its record. Blocks reflinked files share have one
// record per owner, so the tree's intervals overlap and its nodes keep
// a low and a high key per child. The tree is read whole with the AG's
// free space and laid out again with the free-space trees, its blocks
// taken from and given back to the AG free list as theirs are.

// AGF fields of the rmapbt (its root and level are the third of
// agf_roots and agf_levels) and the record's offset flags.
const (
	agfRmapBlocks = 80
	rmapAttrFork  = 1 << 63
	rmapBmbt      = 1 << 62
	rmapUnwritten = 1 << 61
	rmapOffMask   = 1<<54 - 1
)

// Owners of metadata (XFS_RMAP_OWN_*: -3, -5, -6, -7, -8).
const (
	ownAG     = ^uint64(4)
	ownInobt  = ^uint64(5)
	ownInodes = ^uint64(6)
	ownRefc   = ^uint64(7)
)

var kindRmap = sbtKind{magic: "RMB3", recLen: 24, keyLen: 20, owner: ownAG,
	key: rmapKey, high: rmapHigh, less: rmapKeyLess}

// rmOwner is who holds a run: owner, and for an inode's fork the file
// offset of the run's first block with the fork's flags.
type rmOwner struct{ owner, off uint64 }

func dataOwner(ino, off uint64) rmOwner { return rmOwner{ino, off} }
func attrOwner(ino, off uint64) rmOwner { return rmOwner{ino, off | rmapAttrFork} }
func bmbtOwner(ino uint64) rmOwner      { return rmOwner{ino, rmapBmbt} }
func attrBmbtOwner(ino uint64) rmOwner  { return rmOwner{ino, rmapBmbt | rmapAttrFork} }
func metaOwner(o uint64) rmOwner        { return rmOwner{owner: o} }

// logical: the offset counts file blocks (an inode's fork, not its bmbt).
func (o rmOwner) logical() bool { return o.owner>>63 == 0 && o.off&rmapBmbt == 0 }

// at is the owner of the run's k-th block.
func (o rmOwner) at(k uint32) rmOwner {
	if o.logical() {
		o.off += uint64(k)
	}
	return o
}

// rmrec is one reverse-map record: blocks [start, start+count) of the AG.
type rmrec struct {
	start, count uint32
	rmOwner
}

// joins: r ends where n starts, on disk and in the file, for the same
// owner and flags (xfs_rmap_is_mergeable).
func (r rmrec) joins(n rmrec) bool {
	if r.owner != n.owner || r.off&^rmapOffMask != n.off&^rmapOffMask || r.start+r.count != n.start ||
		uint64(r.count)+uint64(n.count) > math.MaxUint32 {
		return false
	}
	return !r.logical() || r.off+uint64(r.count) == n.off
}

func decodeRmap(b []byte) rmrec {
	return rmrec{be.Uint32(b), be.Uint32(b[4:]), rmOwner{be.Uint64(b[8:]), be.Uint64(b[16:])}}
}

func encodeRmaps(recs []rmrec) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		b := make([]byte, kindRmap.recLen)
		be.PutUint32(b, r.start)
		be.PutUint32(b[4:], r.count)
		be.PutUint64(b[8:], r.owner)
		be.PutUint64(b[16:], r.off)
		out[i] = b
	}
	return out
}

// rmapKey is a record's low key: start, owner, offset without the
// unwritten flag (xfs_rmapbt_init_key_from_rec).
func rmapKey(rec []byte) []byte {
	k := make([]byte, 20)
	copy(k, rec[:4])
	copy(k[4:], rec[8:16])
	be.PutUint64(k[12:], be.Uint64(rec[16:])&^rmapUnwritten)
	return k
}

// rmapHigh is a record's high key: its last block and, for file data,
// the last block's offset (xfs_rmapbt_init_high_key_from_rec).
func rmapHigh(rec []byte) []byte {
	r := decodeRmap(rec)
	k := rmapKey(rec)
	be.PutUint32(k, r.start+r.count-1)
	if r.logical() {
		be.PutUint64(k[12:], be.Uint64(k[12:])+uint64(r.count-1))
	}
	return k
}

// rmapKeyLess orders keys by start, owner and offset (flags aside).
func rmapKeyLess(a, b []byte) bool {
	if c := bytes.Compare(a[:12], b[:12]); c != 0 {
		return c < 0
	}
	return be.Uint64(a[12:])&rmapOffMask < be.Uint64(b[12:])&rmapOffMask
}

func rmapLess(a, b rmrec) bool {
	if a.start != b.start {
		return a.start < b.start
	}
	if a.owner != b.owner {
		return a.owner < b.owner
	}
	return a.off&rmapOffMask < b.off&rmapOffMask
}

// agRmap is an AG's reverse map as the writer edits it.
type agRmap struct {
	tree *sbTree
	recs []rmrec // key order
}

func (f *FS) hasRmap() bool {
	return f.w != nil && f.v5() && be.Uint32(f.w.sb[sbROCompat:])&roCompatRmapbt != 0
}

// loadRmap reads and checks AG a's rmapbt.
func (f *FS) loadRmap(a *agFree) error {
	b := a.agf
	tr, err := f.readSbt(a.ag, be.Uint32(b[agfRoots+8:]), int(be.Uint32(b[agfLevels+8:])), kindRmap)
	if err != nil {
		return err
	}
	m := &agRmap{tree: tr}
	for i, raw := range tr.recs {
		r := decodeRmap(raw)
		if r.count == 0 || uint64(r.start)+uint64(r.count) > f.sb.agBlocks || (i > 0 && !rmapLess(m.recs[i-1], r)) {
			return fmt.Errorf("xfs: AG %d: reverse-map record %d+%d (owner %d) out of order or range: %w", a.ag, r.start, r.count, int64(r.owner), ErrCorrupt)
		}
		m.recs = append(m.recs, r)
	}
	if int(be.Uint32(b[agfRmapBlocks:])) != len(tr.blocks) {
		return fmt.Errorf("xfs: AGF %d: rmapbt block count disagrees with the tree: %w", a.ag, ErrCorrupt)
	}
	a.rm = m
	return nil
}

// rmAdd records that o now holds blocks [start, start+n) of the AG,
// joined with the records it touches.
func (a *agFree) rmAdd(start, n uint32, o rmOwner) {
	if a.rm == nil || n == 0 {
		return
	}
	nr := rmrec{start, n, o}
	out := a.rm.recs[:0:0]
	for _, r := range a.rm.recs {
		switch {
		case r.joins(nr):
			nr = rmrec{r.start, r.count + nr.count, r.rmOwner}
		case nr.joins(r):
			nr.count += r.count
		default:
			out = append(out, r)
		}
	}
	out = append(out, nr)
	sort.Slice(out, func(i, j int) bool { return rmapLess(out[i], out[j]) })
	a.rm.recs, a.changed = out, true
}

// rmDel records that o no longer holds blocks [start, start+n): its
// records are cut there. A run o's records do not cover means the
// reverse map and the inode or tree disagree: refused before anything
// is written.
func (a *agFree) rmDel(start, n uint32, o rmOwner) error {
	if a.rm == nil || n == 0 {
		return nil
	}
	end, got := start+n, uint32(0)
	out := a.rm.recs[:0:0]
	for _, r := range a.rm.recs {
		lo, hi := max(r.start, start), min(r.start+r.count, end)
		if lo >= hi || r.owner != o.owner || (r.off^o.off)&(rmapAttrFork|rmapBmbt) != 0 ||
			(r.logical() && r.at(lo-r.start).off&rmapOffMask != o.at(lo-start).off&rmapOffMask) {
			out = append(out, r)
			continue
		}
		if r.start < lo {
			out = append(out, rmrec{r.start, lo - r.start, r.rmOwner})
		}
		if r.start+r.count > hi {
			out = append(out, rmrec{hi, r.start + r.count - hi, r.at(hi - r.start)})
		}
		got += hi - lo
	}
	if got != n {
		return fmt.Errorf("xfs: AG %d: the reverse map does not give blocks %d+%d to owner %d: %w", a.ag, start, n, int64(o.owner), ErrCorrupt)
	}
	sort.Slice(out, func(i, j int) bool { return rmapLess(out[i], out[j]) })
	a.rm.recs, a.changed = out, true
	return nil
}

// unmap takes o's records off file system blocks [fsb, fsb+n) without
// freeing them (blocks reflinked files still share).
func (s *space) unmap(fsb, n uint64, o rmOwner) error {
	a, bno, err := s.agOf(fsb, n)
	if err != nil {
		return err
	}
	return a.rmDel(bno, uint32(n), o)
}

// putRmap lays the AG's rmapbt out in blocks and sets the AGF's root,
// level and block count.
func (a *agFree) putRmap(f *FS, t *txn, blocks []uint32) error {
	root, lv, err := f.putSbt(t, a.ag, kindRmap, encodeRmaps(a.rm.recs), blocks, a.rm.tree.uuid)
	if err != nil {
		return err
	}
	a.rm.tree.blocks = blocks
	be.PutUint32(a.agf[agfRoots+8:], root)
	be.PutUint32(a.agf[agfLevels+8:], uint32(lv))
	be.PutUint32(a.agf[agfRmapBlocks:], uint32(len(blocks)))
	return nil
}
