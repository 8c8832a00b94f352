package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// AGF fields (xfs_agf) and the short-form B+tree block header of v5.
const (
	agfSeqno    = 8
	agfRoots    = 16 // bnobt, cntbt, rmapbt
	agfLevels   = 28
	agfFreeblks = 52
	agfLongest  = 56
	agfCRC      = 216
	sbtHdr      = 56
	sbtCRC      = 52
)

// frec is one free extent of an AG: blocks [start, start+count).
type frec struct{ start, count uint32 }

// agFree is an AG's free space as the writer edits it: both free-space
// B+trees must be a single leaf (their root), which is rewritten whole
// from recs. Deeper trees are refused: no split or join is attempted.
type agFree struct {
	ag             uint32
	agf            []byte
	bnoBlk, cntBlk uint32
	bno, cnt       []byte
	recs           []frec // by start
	changed        bool
}

// errDeepTree marks an AG the writer cannot allocate in.
type errDeepTree struct{ ag uint32 }

func (e errDeepTree) Error() string {
	return fmt.Sprintf("xfs: AG %d's free-space B+trees have more than one level, which offvm does not edit", e.ag)
}

func (f *FS) agOff(ag uint32, agbno uint32) int64 {
	return (int64(ag)*int64(f.sb.agBlocks) + int64(agbno)) * f.sb.blockSize
}

// loadAG reads and checks AG ag's AGF and free-space leaves.
func (f *FS) loadAG(ag uint32, sect int) (*agFree, error) {
	a := &agFree{ag: ag, agf: make([]byte, sect)}
	agfOff := f.agOff(ag, 0) + int64(sect)
	if _, err := f.dev.ReadAt(a.agf, agfOff); err != nil {
		return nil, fmt.Errorf("xfs: reading AGF %d: %w", ag, err)
	}
	b := a.agf
	if string(b[:4]) != "XAGF" || !crcOK(b, agfCRC) || be.Uint32(b[agfSeqno:]) != ag {
		return nil, fmt.Errorf("xfs: AGF %d: bad magic, checksum or number: %w", ag, ErrCorrupt)
	}
	if be.Uint32(b[agfLevels:]) != 1 || be.Uint32(b[agfLevels+4:]) != 1 {
		return nil, errDeepTree{ag}
	}
	a.bnoBlk, a.cntBlk = be.Uint32(b[agfRoots:]), be.Uint32(b[agfRoots+4:])
	var err error
	if a.bno, err = f.loadLeaf(ag, a.bnoBlk, "AB3B"); err != nil {
		return nil, err
	}
	if a.cnt, err = f.loadLeaf(ag, a.cntBlk, "AB3C"); err != nil {
		return nil, err
	}
	a.recs = leafRecs(a.bno)
	byCnt := leafRecs(a.cnt)
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

func (f *FS) loadLeaf(ag, agbno uint32, magic string) ([]byte, error) {
	if uint64(agbno) >= f.sb.agBlocks {
		return nil, fmt.Errorf("xfs: AG %d: %s root %d outside the AG: %w", ag, magic, agbno, ErrCorrupt)
	}
	b := make([]byte, f.sb.blockSize)
	if _, err := f.dev.ReadAt(b, f.agOff(ag, agbno)); err != nil {
		return nil, fmt.Errorf("xfs: reading AG %d block %d: %w", ag, agbno, err)
	}
	n := int(be.Uint16(b[6:]))
	if string(b[:4]) != magic || !crcOK(b, sbtCRC) || be.Uint16(b[4:]) != 0 || n > (len(b)-sbtHdr)/8 {
		return nil, fmt.Errorf("xfs: AG %d block %d: not a %s leaf: %w", ag, agbno, magic, ErrCorrupt)
	}
	return b, nil
}

func leafRecs(b []byte) []frec {
	n := int(be.Uint16(b[6:]))
	out := make([]frec, n)
	for i := range out {
		out[i] = frec{be.Uint32(b[sbtHdr+i*8:]), be.Uint32(b[sbtHdr+i*8+4:])}
	}
	return out
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

// queue writes the AG's leaves and AGF into t, or refuses when the
// records no longer fit one leaf.
func (a *agFree) queue(f *FS, t *txn) error {
	if !a.changed {
		return nil
	}
	if len(a.recs) > (int(f.sb.blockSize)-sbtHdr)/8 {
		return fmt.Errorf("xfs: AG %d: %d free extents would split the free-space B+tree, which offvm does not do: %w", a.ag, len(a.recs), syscall.EOPNOTSUPP)
	}
	var total, longest uint32
	for _, r := range a.recs {
		total += r.count
		longest = max(longest, r.count)
	}
	byCnt := append([]frec(nil), a.recs...)
	sortByCount(byCnt)
	for _, l := range []struct {
		blk  uint32
		b    []byte
		recs []frec
	}{{a.bnoBlk, a.bno, a.recs}, {a.cntBlk, a.cnt, byCnt}} {
		b := append([]byte(nil), l.b...)
		be.PutUint16(b[6:], uint16(len(l.recs)))
		clear(b[sbtHdr:])
		for i, r := range l.recs {
			be.PutUint32(b[sbtHdr+i*8:], r.start)
			be.PutUint32(b[sbtHdr+i*8+4:], r.count)
		}
		t.putCRC(f.agOff(a.ag, l.blk), b, sbtCRC)
	}
	agf := append([]byte(nil), a.agf...)
	be.PutUint32(agf[agfFreeblks:], total)
	be.PutUint32(agf[agfLongest:], longest)
	t.putCRC(f.agOff(a.ag, 0)+int64(len(agf)), agf, agfCRC)
	return nil
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
func (s *space) alloc(goal uint64, n uint64) (uint64, uint64, error) {
	return s.allocAvoiding(goal, n, ^uint64(0))
}

// allocAvoiding is alloc that, past the goal, leaves the free extent
// starting at block avoid (where another part of the same file grows)
// to last.
func (s *space) allocAvoiding(goal, n, avoid uint64) (uint64, uint64, error) {
	f := s.f
	n = min(n, maxExtentLen)
	if uint64(int64(f.w.fdblocks)+s.delta) < n+f.w.reserve {
		return 0, 0, fmt.Errorf("xfs: %d blocks wanted, %d free beyond the reserve: %w", n, int64(f.w.fdblocks)+s.delta-int64(f.w.reserve), syscall.ENOSPC)
	}
	gag, gbno := uint32(goal>>f.sb.agBlkLog), uint32(goal&(1<<f.sb.agBlkLog-1))
	if gag >= f.sb.agCount {
		gag, gbno = 0, 0
	}
	var deep error
	best := struct {
		a *agFree
		i int
	}{}
	for k := uint32(0); k < f.sb.agCount; k++ {
		ag := (gag + k) % f.sb.agCount
		a, err := s.ag(ag)
		if _, ok := err.(errDeepTree); ok {
			deep = err
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		for i, r := range a.recs {
			if k == 0 && goal != 0 && r.start == gbno {
				return s.use(a, i, r.start, min(n, uint64(r.count)))
			}
		}
		for i, r := range a.recs {
			if uint64(r.count) >= n && uint64(ag)<<f.sb.agBlkLog|uint64(r.start) != avoid {
				return s.use(a, i, r.start, n)
			}
			if best.a == nil || r.count > best.a.recs[best.i].count {
				best.a, best.i = a, i
			}
		}
	}
	if best.a != nil {
		r := best.a.recs[best.i]
		return s.use(best.a, best.i, r.start, uint64(r.count))
	}
	if deep != nil {
		return 0, 0, fmt.Errorf("%v: %w", deep, syscall.EOPNOTSUPP)
	}
	return 0, 0, fmt.Errorf("xfs: no free space: %w", syscall.ENOSPC)
}

func (s *space) use(a *agFree, i int, start uint32, n uint64) (uint64, uint64, error) {
	a.take(i, start, uint32(n))
	s.delta -= int64(n)
	return uint64(a.ag)<<s.f.sb.agBlkLog | uint64(start), n, nil
}

// free gives count blocks from file system block fsb back.
func (s *space) free(fsb, count uint64) error {
	f := s.f
	ag, bno := uint32(fsb>>f.sb.agBlkLog), fsb&(1<<f.sb.agBlkLog-1)
	if ag >= f.sb.agCount || bno+count > f.sb.agBlocks || count == 0 {
		return fmt.Errorf("xfs: freeing blocks %d+%d outside the file system: %w", fsb, count, ErrCorrupt)
	}
	a, err := s.ag(ag)
	if err != nil {
		if _, ok := err.(errDeepTree); ok {
			return fmt.Errorf("%v: %w", err, syscall.EOPNOTSUPP)
		}
		return err
	}
	if err := a.give(uint32(bno), uint32(count)); err != nil {
		return err
	}
	s.delta += int64(count)
	return nil
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
