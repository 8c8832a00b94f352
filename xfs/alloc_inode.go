package xfs

import (
	"errors"
	"fmt"
	"sort"
	"syscall"
)

// AGI fields (xfs_agi) and superblock inode counters.
const (
	agiSeqno       = 8
	agiRoot        = 20
	agiLevel       = 24
	agiFreecount   = 28
	agiCRC         = 312
	agiFreeRoot    = 328
	agiFreeLevel   = 332
	sbIfree        = 136
	roCompatFinobt = 1 << 0
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
// free-space trees, each must be one leaf, rewritten whole.
type agInodes struct {
	ag             uint32
	agi            []byte
	ino, fino      []byte // leaves
	inoBlk, finBlk uint32
	recs           []irec // the inobt's, by start
	changed        bool
	added          uint32    // inodes in new chunks (wchunk.go)
	newino         uint32    // the newest chunk's first inode
	chunks         []pending // their initialised inodes
}

func (f *FS) hasFinobt() bool {
	return f.w != nil && be.Uint32(f.w.sb[sbROCompat:])&roCompatFinobt != 0
}

func (f *FS) loadAGI(ag uint32, sect int) (*agInodes, error) {
	a := &agInodes{ag: ag, agi: make([]byte, sect)}
	if _, err := f.dev.ReadAt(a.agi, f.agOff(ag, 0)+2*int64(sect)); err != nil {
		return nil, fmt.Errorf("xfs: reading AGI %d: %w", ag, err)
	}
	b := a.agi
	if string(b[:4]) != "XAGI" || !crcOK(b, agiCRC) || be.Uint32(b[agiSeqno:]) != ag {
		return nil, fmt.Errorf("xfs: AGI %d: bad magic, checksum or number: %w", ag, ErrCorrupt)
	}
	if be.Uint32(b[agiLevel:]) != 1 || (f.hasFinobt() && be.Uint32(b[agiFreeLevel:]) != 1) {
		return nil, errDeepTree{ag}
	}
	var err error
	a.inoBlk = be.Uint32(b[agiRoot:])
	if a.ino, err = f.sbtBlock(ag, a.inoBlk, 0, kindIno); err != nil {
		return nil, err
	}
	if f.hasFinobt() {
		a.finBlk = be.Uint32(b[agiFreeRoot:])
		if a.fino, err = f.sbtBlock(ag, a.finBlk, 0, kindFino); err != nil {
			return nil, err
		}
	}
	a.recs = f.inoRecs(a.ino)
	var free uint32
	for _, r := range a.recs {
		free += r.freecount
	}
	if free != be.Uint32(b[agiFreecount:]) {
		return nil, fmt.Errorf("xfs: AGI %d: free count %d, its inode B+tree %d: %w", ag, be.Uint32(b[agiFreecount:]), free, ErrCorrupt)
	}
	return a, nil
}

func (f *FS) sparse() bool { return f.w != nil && be.Uint32(f.w.sb[216:])&incompatSpinode != 0 }

func (f *FS) inoRecs(b []byte) []irec {
	n := int(be.Uint16(b[6:]))
	out := make([]irec, n)
	for i := range out {
		p := b[sbtHdr+i*16:]
		r := irec{start: be.Uint32(p), free: be.Uint64(p[8:])}
		if f.sparse() {
			r.holemask, r.count, r.freecount = be.Uint16(p[4:]), p[6], uint32(p[7])
		} else {
			r.count, r.freecount = 64, be.Uint32(p[4:])
		}
		out[i] = r
	}
	return out
}

func (f *FS) putInoRecs(b []byte, recs []irec) {
	be.PutUint16(b[6:], uint16(len(recs)))
	clear(b[sbtHdr:])
	for i, r := range recs {
		p := b[sbtHdr+i*16:]
		be.PutUint32(p, r.start)
		if f.sparse() {
			be.PutUint16(p[4:], r.holemask)
			p[6], p[7] = r.count, byte(r.freecount)
		} else {
			be.PutUint32(p[4:], r.freecount)
		}
		be.PutUint64(p[8:], r.free)
	}
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
	var deep error
	for k := uint32(0); k < s.f.sb.agCount; k++ {
		ag := (first + k) % s.f.sb.agCount
		a, err := s.ag(ag)
		if _, ok := err.(errDeepTree); ok {
			deep = err
			continue
		}
		if err != nil {
			return 0, err
		}
		for ri := range a.recs {
			r := &a.recs[ri]
			for i := 0; i < 64 && r.freecount > 0; i++ {
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
		if deep != nil && !errors.Is(err, syscall.EOPNOTSUPP) {
			return 0, fmt.Errorf("%v (inode B+trees): %w", deep, syscall.EOPNOTSUPP)
		}
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
		if _, ok := err.(errDeepTree); ok {
			return fmt.Errorf("%v (inode B+trees): %w", err, syscall.EOPNOTSUPP)
		}
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

// queue writes the changed AGs' leaves (the finobt holding the chunks
// with free inodes) and AGIs, and the superblock's free count.
func (s *inodes) queue(t *txn) error {
	f := s.f
	for ag := uint32(0); ag < f.sb.agCount; ag++ {
		a, ok := s.ags[ag]
		if !ok || !a.changed {
			continue
		}
		maxr := (int(f.sb.blockSize) - sbtHdr) / 16
		var free uint32
		var fin []irec
		for _, r := range a.recs {
			free += r.freecount
			if r.freecount > 0 {
				fin = append(fin, r)
			}
		}
		if len(fin) > maxr || len(a.recs) > maxr {
			return fmt.Errorf("xfs: AG %d: the free inode B+tree would split, which offvm does not do: %w", ag, syscall.EOPNOTSUPP)
		}
		for _, c := range a.chunks { // initialised before the trees name them
			t.put(c.off, c.b)
		}
		b := append([]byte(nil), a.ino...)
		f.putInoRecs(b, a.recs)
		t.putCRC(f.agOff(ag, a.inoBlk), b, sbtCRC)
		if a.fino != nil {
			b = append([]byte(nil), a.fino...)
			f.putInoRecs(b, fin)
			t.putCRC(f.agOff(ag, a.finBlk), b, sbtCRC)
		}
		agi := append([]byte(nil), a.agi...)
		be.PutUint32(agi[agiFreecount:], free)
		if a.added > 0 {
			be.PutUint32(agi[agiCount:], be.Uint32(agi[agiCount:])+a.added)
			be.PutUint32(agi[agiNewino:], a.newino)
		}
		t.putCRC(f.agOff(ag, 0)+2*int64(len(agi)), agi, agiCRC)
	}
	return nil
}
