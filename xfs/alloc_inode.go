package xfs

import (
	"fmt"
	"slices"
	"sort"
)

// AGI fields (xfs_agi) and superblock inode counters.
const (
	agiSeqno         = 8
	agiRoot          = 20
	agiLevel         = 24
	agiFreecount     = 28
	agiCRC           = 312
	agiFreeRoot      = 328
	agiFreeLevel     = 332
	agiIblocks       = 336 // inobtcount: blocks of the inobt
	agiFblocks       = 340 // and of the finobt
	sbIfree          = 136
	roCompatFinobt   = 1 << 0
	roCompatInobtCnt = 1 << 3
)

// irec is one inode chunk of an inode B+tree: 64 inodes from startino,
// free says which are free, holes (sparse chunks) which do not exist.
type irec struct {
	start     uint32
	holemask  uint16
	count     uint8
	freecount uint32
	free      uint64
}

func (r irec) usable(i int) bool {
	return r.free&(1<<i) != 0 && r.holemask&(1<<(i/4)) == 0
}

// agInodes is an AG's inode B+trees as the writer edits them: like the
// free-space trees, read whole (sbtree.go) and, when a chunk changed,
// laid out again from the inobt's records; the finobt is the records
// with a free inode. Their blocks come from and go back to the AG's
// free space, as the kernel's xfs_inobt_alloc_block takes them.
type agInodes struct {
	ag        uint32
	agi       []byte
	ino, fino *sbTree
	recs      []irec // the inobt's, by start
	changed   bool
	added     uint32    // inodes in new chunks (alloc_chunk.go)
	newino    uint32    // the newest chunk's first inode
	chunks    []pending // their initialised inodes
}

func (f *FS) hasFinobt() bool {
	return f.w != nil && f.v5() && be.Uint32(f.w.sb[sbROCompat:])&roCompatFinobt != 0
}

// hasInobtCount: the AGI counts the blocks of both trees.
func (f *FS) hasInobtCount() bool {
	return f.w != nil && f.v5() && be.Uint32(f.w.sb[sbROCompat:])&roCompatInobtCnt != 0
}

// loadAGI reads and checks AG ag's AGI and inode B+trees: records in
// order, the AGI's free count theirs, the finobt exactly the chunks
// with a free inode, block counts as the AGI says.
func (f *FS) loadAGI(ag uint32, sect int) (*agInodes, error) {
	a := &agInodes{ag: ag, agi: make([]byte, sect)}
	if _, err := f.dev.ReadAt(a.agi, f.agOff(ag, 0)+2*int64(sect)); err != nil {
		return nil, fmt.Errorf("xfs: reading AGI %d: %w", ag, err)
	}
	b := a.agi
	if string(b[:4]) != "XAGI" || !f.sumOK(b, agiCRC) || be.Uint32(b[agiSeqno:]) != ag {
		return nil, fmt.Errorf("xfs: AGI %d: bad magic, checksum or number: %w", ag, ErrCorrupt)
	}
	var err error
	if a.ino, err = f.readSbt(ag, be.Uint32(b[agiRoot:]), int(be.Uint32(b[agiLevel:])), kindIno); err != nil {
		return nil, err
	}
	a.recs = f.inoRecs(a.ino.recs)
	var free uint32
	for i, r := range a.recs {
		free += r.freecount
		if r.freecount > inosPerChunk || (i > 0 && a.recs[i-1].start+inosPerChunk > r.start) {
			return nil, fmt.Errorf("xfs: AG %d: inode chunk at %d out of order or with %d free: %w", ag, r.start, r.freecount, ErrCorrupt)
		}
	}
	if free != be.Uint32(b[agiFreecount:]) {
		return nil, fmt.Errorf("xfs: AGI %d: free count %d, its inode B+tree %d: %w", ag, be.Uint32(b[agiFreecount:]), free, ErrCorrupt)
	}
	if f.hasFinobt() {
		if a.fino, err = f.readSbt(ag, be.Uint32(b[agiFreeRoot:]), int(be.Uint32(b[agiFreeLevel:])), kindFino); err != nil {
			return nil, err
		}
		if !slices.Equal(f.inoRecs(a.fino.recs), withFree(a.recs)) {
			return nil, fmt.Errorf("xfs: AG %d: the free inode B+tree is not the chunks with free inodes: %w", ag, ErrCorrupt)
		}
	}
	if f.hasInobtCount() && (int(be.Uint32(b[agiIblocks:])) != len(a.ino.blocks) || (a.fino != nil && int(be.Uint32(b[agiFblocks:])) != len(a.fino.blocks))) {
		return nil, fmt.Errorf("xfs: AGI %d: inode B+tree block counts disagree with the trees: %w", ag, ErrCorrupt)
	}
	return a, nil
}

// withFree is the records a finobt holds: chunks with a free inode.
func withFree(recs []irec) []irec {
	out := []irec{}
	for _, r := range recs {
		if r.freecount > 0 {
			out = append(out, r)
		}
	}
	return out
}

func (f *FS) sparse() bool {
	return f.w != nil && f.v5() && be.Uint32(f.w.sb[216:])&incompatSpinode != 0
}

func (f *FS) inoRecs(raw [][]byte) []irec {
	out := make([]irec, len(raw))
	for i, p := range raw {
		r := irec{start: be.Uint32(p), free: be.Uint64(p[8:])}
		if f.sparse() {
			r.holemask, r.count, r.freecount = be.Uint16(p[4:]), p[6], uint32(p[7])
		} else {
			r.count, r.freecount = inosPerChunk, be.Uint32(p[4:])
		}
		out[i] = r
	}
	return out
}

func (f *FS) encodeInoRecs(recs []irec) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		p := make([]byte, kindIno.recLen)
		be.PutUint32(p, r.start)
		if f.sparse() {
			be.PutUint16(p[4:], r.holemask)
			p[6], p[7] = r.count, byte(r.freecount)
		} else {
			be.PutUint32(p[4:], r.freecount)
		}
		be.PutUint64(p[8:], r.free)
		out[i] = p
	}
	return out
}

// inodes is one operation's view of the inode B+trees.
type inodes struct {
	f     *FS
	sect  int
	ags   map[uint32]*agInodes
	delta int64 // free inodes gained
	// icount is the inodes new chunks add; sp gives them blocks
	icount int64
	sp     *space
}

func (f *FS) newInodes(sp *space) *inodes {
	return &inodes{f: f, sect: len(f.w.sb), ags: map[uint32]*agInodes{}, sp: sp}
}

func (s *inodes) ag(ag uint32) (*agInodes, error) {
	if a, ok := s.ags[ag]; ok {
		return a, nil
	}
	a, err := s.f.loadAGI(ag, s.sect)
	if err != nil {
		return nil, err
	}
	s.ags[ag] = a
	return a, nil
}

func (s *inodes) inoNum(ag uint32, agino uint32) uint64 {
	return uint64(ag)<<(s.f.sb.agBlkLog+s.f.sb.inoPBLog) | uint64(agino)
}

// alloc takes a free inode of an existing chunk, from AG first on, or
// of a new chunk when none has one.
func (s *inodes) alloc(first uint32) (uint64, error) {
	for k := uint32(0); k < s.f.sb.agCount; k++ {
		ag := (first + k) % s.f.sb.agCount
		a, err := s.ag(ag)
		if err != nil {
			return 0, err
		}
		for ri := range a.recs {
			r := &a.recs[ri]
			for i := 0; i < inosPerChunk && r.freecount > 0; i++ {
				if r.usable(i) {
					r.free &^= 1 << i
					r.freecount--
					a.changed = true
					s.delta--
					return s.inoNum(ag, r.start+uint32(i)), nil
				}
			}
		}
	}
	a, ri, err := s.newChunk(first)
	if err != nil {
		return 0, err
	}
	r := &a.recs[ri]
	r.free &^= 1
	r.freecount--
	s.delta--
	return s.inoNum(a.ag, r.start), nil
}

// free marks inode ino free in its chunk.
func (s *inodes) free(ino uint64) error {
	f := s.f
	ag := uint32(ino >> (f.sb.agBlkLog + f.sb.inoPBLog))
	agino := uint32(ino & (1<<(f.sb.agBlkLog+f.sb.inoPBLog) - 1))
	a, err := s.ag(ag)
	if err != nil {
		return err
	}
	i := sort.Search(len(a.recs), func(i int) bool { return a.recs[i].start+64 > agino })
	if i == len(a.recs) || a.recs[i].start > agino || a.recs[i].free&(1<<(agino-a.recs[i].start)) != 0 {
		return fmt.Errorf("xfs: inode %d is not in use in its inode B+tree: %w", ino, ErrCorrupt)
	}
	a.recs[i].free |= 1 << (agino - a.recs[i].start)
	a.recs[i].freecount++
	a.changed = true
	s.delta++
	return nil
}

// queue lays the changed AGs' inode B+trees out again (the finobt
// holding the chunks with free inodes) and puts them, the new chunks
// and the AGIs into t. It takes and frees the trees' blocks in s.sp, so
// it runs before the free-space trees are queued.
func (s *inodes) queue(t *txn) error {
	f := s.f
	for ag := uint32(0); ag < f.sb.agCount; ag++ {
		a, ok := s.ags[ag]
		if !ok || !a.changed {
			continue
		}
		for _, c := range a.chunks { // initialised before the trees name them
			t.put(c.off, c.b)
		}
		agi := append([]byte(nil), a.agi...)
		root, lv, err := s.putTree(t, a, a.ino, kindIno, a.recs)
		if err != nil {
			return err
		}
		be.PutUint32(agi[agiRoot:], root)
		be.PutUint32(agi[agiLevel:], uint32(lv))
		if a.fino != nil {
			if root, lv, err = s.putTree(t, a, a.fino, kindFino, withFree(a.recs)); err != nil {
				return err
			}
			be.PutUint32(agi[agiFreeRoot:], root)
			be.PutUint32(agi[agiFreeLevel:], uint32(lv))
		}
		if f.hasInobtCount() {
			be.PutUint32(agi[agiIblocks:], uint32(len(a.ino.blocks)))
			if a.fino != nil {
				be.PutUint32(agi[agiFblocks:], uint32(len(a.fino.blocks)))
			}
		}
		var free uint32
		for _, r := range a.recs {
			free += r.freecount
		}
		be.PutUint32(agi[agiFreecount:], free)
		if a.added > 0 {
			be.PutUint32(agi[agiCount:], be.Uint32(agi[agiCount:])+a.added)
			be.PutUint32(agi[agiNewino:], a.newino)
		}
		t.putCRC(f.agOff(ag, 0)+2*int64(len(agi)), agi, agiCRC)
	}
	return nil
}

// putTree lays out one of a's inode B+trees from recs.
func (s *inodes) putTree(t *txn, a *agInodes, tr *sbTree, k sbtKind, recs []irec) (uint32, int, error) {
	return s.sp.putTree(t, a.ag, tr, k, s.f.encodeInoRecs(recs))
}
