package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// AGF fields (xfs_agf), the AGFL and the short-form B+tree block header of v5.
const (
	agfSeqno     = 8
	agfRoots     = 16 // bnobt, cntbt, rmapbt
	agfLevels    = 28
	agfFlfirst   = 40
	agfFllast    = 44
	agfFlcount   = 48
	agfFreeblks  = 52
	agfLongest   = 56
	agfBtreeblks = 60
	agfCRC       = 216
	agflHdr5     = 36
	agflCRC      = 32
	sbtHdr5      = 56
	sbtHdr4      = 16
	sbtCRC       = 52
)

// frec is one free extent of an AG: blocks [start, start+count).
type frec struct{ start, count uint32 }

// agFree is an AG's free space as the writer edits it: the records of
// the free-space B+trees, read whole; a changed AG has both trees laid
// out again from them (sbtree.go), their blocks taken from or given
// back to the AG free list (AGFL) as the kernel's trees take theirs.
type agFree struct {
	ag       uint32
	agf      []byte
	agfl     []byte
	bno, cnt *sbTree
	recs     []frec  // by start
	rm       *agRmap // the reverse map, when the file system has one
	changed  bool
	flMoved  bool // the AGFL changed
	flHdr    int  // the AGFL's header size
}

func (f *FS) agOff(ag uint32, agbno uint32) int64 {
	return (int64(ag)*int64(f.sb.agBlocks) + int64(agbno)) * f.sb.blockSize
}

// loadAG reads and checks AG ag's AGF, AGFL and free-space trees.
func (f *FS) loadAG(ag uint32, sect int) (*agFree, error) {
	a := &agFree{ag: ag, agf: make([]byte, sect), agfl: make([]byte, sect)}
	if _, err := f.dev.ReadAt(a.agf, f.agOff(ag, 0)+int64(sect)); err != nil {
		return nil, fmt.Errorf("xfs: reading AGF %d: %w", ag, err)
	}
	if _, err := f.dev.ReadAt(a.agfl, f.agOff(ag, 0)+3*int64(sect)); err != nil {
		return nil, fmt.Errorf("xfs: reading AGFL %d: %w", ag, err)
	}
	b := a.agf
	if string(b[:4]) != "XAGF" || !f.sumOK(b, agfCRC) || be.Uint32(b[agfSeqno:]) != ag {
		return nil, fmt.Errorf("xfs: AGF %d: bad magic, checksum or number: %w", ag, ErrCorrupt)
	}
	if a.flHdr = f.agflHdr(); f.v5() && (string(a.agfl[:4]) != "XAFL" || !crcOK(a.agfl, agflCRC) || be.Uint32(a.agfl[4:]) != ag) {
		return nil, fmt.Errorf("xfs: AGFL %d: bad magic, checksum or number: %w", ag, ErrCorrupt)
	}
	if n, size := be.Uint32(b[agfFlcount:]), a.flSize(); n > size || be.Uint32(b[agfFlfirst:]) >= size || be.Uint32(b[agfFllast:]) >= size ||
		(n > 0 && (be.Uint32(b[agfFllast:])+size-be.Uint32(b[agfFlfirst:]))%size+1 != n) {
		return nil, fmt.Errorf("xfs: AGF %d: free list of %d blocks from %d to %d: %w", ag, n, be.Uint32(b[agfFlfirst:]), be.Uint32(b[agfFllast:]), ErrCorrupt)
	}
	var err error
	if a.bno, err = f.readSbt(ag, be.Uint32(b[agfRoots:]), int(be.Uint32(b[agfLevels:])), kindBno); err != nil {
		return nil, err
	}
	if a.cnt, err = f.readSbt(ag, be.Uint32(b[agfRoots+4:]), int(be.Uint32(b[agfLevels+4:])), kindCnt); err != nil {
		return nil, err
	}
	if f.hasRmap() {
		if err := f.loadRmap(a); err != nil {
			return nil, err
		}
	}
	a.recs = freeRecs(a.bno.recs)
	byCnt := freeRecs(a.cnt.recs)
	var total uint64
	for i, r := range a.recs {
		total += uint64(r.count)
		if r.count == 0 || uint64(r.start)+uint64(r.count) > f.sb.agBlocks || (i > 0 && a.recs[i-1].start+a.recs[i-1].count > r.start) {
			return nil, fmt.Errorf("xfs: AG %d: free extent %d+%d out of order or range: %w", ag, r.start, r.count, ErrCorrupt)
		}
	}
	sortByCount(byCnt)
	want := append([]frec(nil), a.recs...)
	sortByCount(want)
	if len(want) != len(byCnt) || total != uint64(be.Uint32(b[agfFreeblks:])) {
		return nil, fmt.Errorf("xfs: AG %d: free-space B+trees and AGF disagree: %w", ag, ErrCorrupt)
	}
	for i := range want {
		if want[i] != byCnt[i] {
			return nil, fmt.Errorf("xfs: AG %d: by-block and by-size free-space trees disagree: %w", ag, ErrCorrupt)
		}
	}
	return a, nil
}

func freeRecs(raw [][]byte) []frec {
	out := make([]frec, len(raw))
	for i, b := range raw {
		out[i] = frec{be.Uint32(b), be.Uint32(b[4:])}
	}
	return out
}

func encodeFree(recs []frec) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		b := make([]byte, 8)
		be.PutUint32(b, r.start)
		be.PutUint32(b[4:], r.count)
		out[i] = b
	}
	return out
}

// flSize is how many block numbers the AGFL holds.
func (a *agFree) flSize() uint32 { return uint32(len(a.agfl)-a.flHdr) / 4 }

// flTake takes the free list's first block, as the kernel's
// xfs_alloc_get_freelist does.
func (a *agFree) flTake() (uint32, bool) {
	n := be.Uint32(a.agf[agfFlcount:])
	if n == 0 {
		return 0, false
	}
	first := be.Uint32(a.agf[agfFlfirst:])
	bno := be.Uint32(a.agfl[a.flHdr+int(first)*4:])
	be.PutUint32(a.agf[agfFlfirst:], (first+1)%a.flSize())
	be.PutUint32(a.agf[agfFlcount:], n-1)
	a.flMoved = true
	return bno, true
}

// flPut adds a block at the free list's end unless it is full.
func (a *agFree) flPut(bno uint32) bool {
	n := be.Uint32(a.agf[agfFlcount:])
	if n >= a.flSize() {
		return false
	}
	last := (be.Uint32(a.agf[agfFllast:]) + 1) % a.flSize()
	be.PutUint32(a.agfl[a.flHdr+int(last)*4:], bno)
	be.PutUint32(a.agf[agfFllast:], last)
	be.PutUint32(a.agf[agfFlcount:], n+1)
	a.flMoved = true
	return true
}

func sortByCount(r []frec) {
	sort.Slice(r, func(i, j int) bool {
		if r[i].count != r[j].count {
			return r[i].count < r[j].count
		}
		return r[i].start < r[j].start
	})
}

// take removes blocks [start, start+n) from free extent i.
func (a *agFree) take(i int, start, n uint32) {
	r := a.recs[i]
	var rest []frec
	if start > r.start {
		rest = append(rest, frec{r.start, start - r.start})
	}
	if end := r.start + r.count; start+n < end {
		rest = append(rest, frec{start + n, end - start - n})
	}
	a.recs = append(a.recs[:i], append(rest, a.recs[i+1:]...)...)
	a.changed = true
}

// give returns blocks [start, start+n) to the AG, merged with free
// neighbours. Overlap with free space means the inode and the trees
// disagree: refused before anything is written.
func (a *agFree) give(start, n uint32) error {
	i := sort.Search(len(a.recs), func(i int) bool { return a.recs[i].start >= start })
	if (i < len(a.recs) && start+n > a.recs[i].start) || (i > 0 && a.recs[i-1].start+a.recs[i-1].count > start) {
		return fmt.Errorf("xfs: AG %d: freeing blocks %d+%d that are already free: %w", a.ag, start, n, ErrCorrupt)
	}
	r := frec{start, n}
	if i < len(a.recs) && start+n == a.recs[i].start {
		r.count += a.recs[i].count
		a.recs = append(a.recs[:i], a.recs[i+1:]...)
	}
	if i > 0 && a.recs[i-1].start+a.recs[i-1].count == start {
		a.recs[i-1].count += r.count
	} else {
		a.recs = append(a.recs[:i], append([]frec{r}, a.recs[i:]...)...)
	}
	a.changed = true
	return nil
}

// queue lays the AG's two free-space trees out again and puts them, the
// AGF and the AGFL into t. The trees' blocks are the ones they held;
// one more comes from the free list (or, when it is empty, from the
// largest free extent), one fewer goes to the free list (or back to
// free space when it is full), until the blocks match the records.
func (a *agFree) queue(f *FS, t *txn) error {
	if !a.changed {
		return nil
	}
	have := append(append([]uint32(nil), a.bno.blocks...), a.cnt.blocks...)
	if a.rm != nil {
		have = append(have, a.rm.tree.blocks...)
	}
	old := len(have)
	for tries := 0; ; tries++ {
		need := a.treesNeed(f)
		if need == len(have) {
			break
		}
		if tries > 64 {
			return fmt.Errorf("xfs: AG %d: free-space B+tree blocks do not settle: %w", a.ag, syscall.EOPNOTSUPP)
		}
		if need > len(have) {
			b, err := a.treeBlock()
			if err != nil {
				return err
			}
			have = append(have, b)
			continue
		}
		for _, b := range have[need:] {
			if !a.flPut(b) {
				if err := a.giveOwned(b, 1, metaOwner(ownAG)); err != nil {
					return err
				}
			}
		}
		have = have[:need]
	}
	nb := f.sbtBlocks(len(a.recs), kindBno)
	nc := f.sbtBlocks(len(a.recs), kindCnt)
	byCnt := append([]frec(nil), a.recs...)
	sortByCount(byCnt)
	bnoRoot, bnoLv, err := f.putSbt(t, a.ag, kindBno, encodeFree(a.recs), have[:nb], a.bno.uuid)
	if err != nil {
		return err
	}
	cntRoot, cntLv, err := f.putSbt(t, a.ag, kindCnt, encodeFree(byCnt), have[nb:nb+nc], a.cnt.uuid)
	if err != nil {
		return err
	}
	if a.rm != nil {
		if err := a.putRmap(f, t, have[nb+nc:]); err != nil {
			return err
		}
	}
	var total, longest uint32
	for _, r := range a.recs {
		total += r.count
		longest = max(longest, r.count)
	}
	b := a.agf
	be.PutUint32(b[agfRoots:], bnoRoot)
	be.PutUint32(b[agfRoots+4:], cntRoot)
	be.PutUint32(b[agfLevels:], uint32(bnoLv))
	be.PutUint32(b[agfLevels+4:], uint32(cntLv))
	be.PutUint32(b[agfFreeblks:], total)
	be.PutUint32(b[agfLongest:], longest)
	be.PutUint32(b[agfBtreeblks:], uint32(int64(be.Uint32(b[agfBtreeblks:]))+int64(len(have)-old)))
	if a.flMoved {
		t.putCRC(f.agOff(a.ag, 0)+3*int64(len(a.agfl)), append([]byte(nil), a.agfl...), agflCRC)
	}
	t.putCRC(f.agOff(a.ag, 0)+int64(len(b)), append([]byte(nil), b...), agfCRC)
	return nil
}

// treesNeed is how many blocks the AGF's trees need for their records.
func (a *agFree) treesNeed(f *FS) int {
	n := f.sbtBlocks(len(a.recs), kindBno) + f.sbtBlocks(len(a.recs), kindCnt)
	if a.rm != nil {
		n += f.sbtBlocks(len(a.rm.recs), kindRmap)
	}
	return n
}

// giveOwned frees blocks o held: off the reverse map, back to free space.
func (a *agFree) giveOwned(start, n uint32, o rmOwner) error {
	if err := a.rmDel(start, n, o); err != nil {
		return err
	}
	return a.give(start, n)
}

// treeBlock is a block for a free-space tree: the free list's first,
// or the last block of the largest free extent.
func (a *agFree) treeBlock() (uint32, error) {
	if b, ok := a.flTake(); ok {
		return b, nil
	}
	best := -1
	for i, r := range a.recs {
		if best < 0 || r.count > a.recs[best].count {
			best = i
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("xfs: AG %d: no block for its free-space B+trees: %w", a.ag, syscall.ENOSPC)
	}
	r := a.recs[best]
	a.take(best, r.start+r.count-1, 1)
	a.rmAdd(r.start+r.count-1, 1, metaOwner(ownAG))
	return r.start + r.count - 1, nil
}

// space is one operation's view of free space: AGs loaded on demand.
type space struct {
	f     *FS
	sect  int
	ags   map[uint32]*agFree
	delta int64 // free blocks gained (negative: used)
}

func (f *FS) newSpace() *space {
	return &space{f: f, sect: len(f.w.sb), ags: map[uint32]*agFree{}}
}

func (s *space) ag(ag uint32) (*agFree, error) {
	if a, ok := s.ags[ag]; ok {
		return a, nil
	}
	a, err := s.f.loadAG(ag, s.sect)
	if err != nil {
		return nil, err
	}
	s.ags[ag] = a
	return a, nil
}

const maxExtentLen = 1<<21 - 1

// alloc finds up to n blocks, preferring to start at goal (a file
// system block number: the block after the file's last extent), then
// the first free extent large enough, starting in the goal's AG. It
// returns one run; callers loop for the rest.
// o owns the run (its first block, when the owner counts file offsets).
func (s *space) alloc(goal uint64, n uint64, o rmOwner) (uint64, uint64, error) {
	return s.allocAvoiding(goal, n, ^uint64(0), o)
}

// allocAvoiding is alloc that, past the goal, leaves the free extent
// starting at block avoid (where another part of the same file grows)
// to last.
func (s *space) allocAvoiding(goal, n, avoid uint64, o rmOwner) (uint64, uint64, error) {
	f := s.f
	n = min(n, maxExtentLen)
	if uint64(int64(f.w.fdblocks)+s.delta) < n+f.w.reserve {
		return 0, 0, fmt.Errorf("xfs: %d blocks wanted, %d free beyond the reserve: %w", n, int64(f.w.fdblocks)+s.delta-int64(f.w.reserve), syscall.ENOSPC)
	}
	gag, gbno := uint32(goal>>f.sb.agBlkLog), uint32(goal&(1<<f.sb.agBlkLog-1))
	if gag >= f.sb.agCount {
		gag, gbno = 0, 0
	}
	best := struct {
		a *agFree
		i int
	}{}
	for k := uint32(0); k < f.sb.agCount; k++ {
		ag := (gag + k) % f.sb.agCount
		a, err := s.ag(ag)
		if err != nil {
			return 0, 0, err
		}
		for i, r := range a.recs {
			if k == 0 && goal != 0 && r.start == gbno {
				return s.use(a, i, r.start, min(n, uint64(r.count)), o)
			}
		}
		for i, r := range a.recs {
			if uint64(r.count) >= n && uint64(ag)<<f.sb.agBlkLog|uint64(r.start) != avoid {
				return s.use(a, i, r.start, n, o)
			}
			if best.a == nil || r.count > best.a.recs[best.i].count {
				best.a, best.i = a, i
			}
		}
	}
	if best.a != nil {
		r := best.a.recs[best.i]
		return s.use(best.a, best.i, r.start, uint64(r.count), o)
	}
	return 0, 0, fmt.Errorf("xfs: no free space: %w", syscall.ENOSPC)
}

func (s *space) use(a *agFree, i int, start uint32, n uint64, o rmOwner) (uint64, uint64, error) {
	a.take(i, start, uint32(n))
	a.rmAdd(start, uint32(n), o)
	s.delta -= int64(n)
	return uint64(a.ag)<<s.f.sb.agBlkLog | uint64(start), n, nil
}

// free gives count blocks from file system block fsb, which o held, back.
func (s *space) free(fsb, count uint64, o rmOwner) error {
	if err := s.unmap(fsb, count, o); err != nil {
		return err
	}
	return s.freeUnmapped(fsb, count)
}

// freeUnmapped gives blocks back whose owners the reverse map no longer
// names (reflink: the last owner's record went with unmap).
func (s *space) freeUnmapped(fsb, count uint64) error {
	a, bno, err := s.agOf(fsb, count)
	if err != nil {
		return err
	}
	if err := a.give(bno, uint32(count)); err != nil {
		return err
	}
	s.delta += int64(count)
	return nil
}

// agOf is the AG of blocks [fsb, fsb+count) and the run's first block in it.
func (s *space) agOf(fsb, count uint64) (*agFree, uint32, error) {
	f := s.f
	ag, bno := uint32(fsb>>f.sb.agBlkLog), fsb&(1<<f.sb.agBlkLog-1)
	if ag >= f.sb.agCount || bno+count > f.sb.agBlocks || count == 0 {
		return nil, 0, fmt.Errorf("xfs: blocks %d+%d outside the file system: %w", fsb, count, ErrCorrupt)
	}
	a, err := s.ag(ag)
	return a, uint32(bno), err
}

// queue puts every changed AG into t.
func (s *space) queue(t *txn) error {
	for ag := uint32(0); ag < s.f.sb.agCount; ag++ {
		if a, ok := s.ags[ag]; ok {
			if err := a.queue(s.f, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// putTree gives tree tr (an inode or refcount B+tree, whose blocks come
// from the AG's free space) the blocks recs need, new ones allocated and
// the ones no longer needed freed, and lays it out.
func (s *space) putTree(t *txn, ag uint32, tr *sbTree, k sbtKind, recs [][]byte) (uint32, int, error) {
	f := s.f
	need := f.sbtBlocks(len(recs), k)
	for len(tr.blocks) < need {
		bno, err := s.allocAligned(ag, 1, 1, metaOwner(k.owner))
		if err != nil {
			return 0, 0, err
		}
		if bno == noBlock {
			return 0, 0, fmt.Errorf("xfs: AG %d: no free block for its %s B+tree: %w", ag, k.magic, syscall.ENOSPC)
		}
		tr.blocks = append(tr.blocks, bno)
	}
	for len(tr.blocks) > need {
		last := tr.blocks[len(tr.blocks)-1]
		if err := s.free(uint64(ag)<<f.sb.agBlkLog|uint64(last), 1, metaOwner(k.owner)); err != nil {
			return 0, 0, err
		}
		tr.blocks = tr.blocks[:len(tr.blocks)-1]
	}
	return f.putSbt(t, ag, k, recs, tr.blocks, tr.uuid)
}
