package xfs

import (
	"fmt"
	"sort"
	"syscall"
)

// New inode chunks: when no existing chunk has a free inode, the writer
// allocates one as the kernel's xfs_ialloc_ag_alloc does: 64 inodes in
// blocks aligned to sb_inoalignmt, each initialised (magic, version,
// number, UUID, CRC, no next-unlinked), a record in the inode B+tree and
// the free inode B+tree, and the AGI's and superblock's counts. Sparse
// chunks (for fragmented AGs) are not made: no aligned run means ENOSPC.

const (
	agiCount     = 16
	agiNewino    = 32
	sbIcount     = 128
	sbInoAlignmt = 180
	inosPerChunk = 64
)

// newChunk adds a full inode chunk to the first AG from first on that
// has aligned free blocks; it returns the AG and the new record's index.
func (s *inodes) newChunk(first uint32) (*agInodes, int, error) {
	f := s.f
	blocks := uint32(inosPerChunk / f.sb.inoPerBlock)
	if blocks == 0 {
		return nil, 0, fmt.Errorf("xfs: a %d-byte block holds more than one inode chunk, which offvm does not allocate: %w", f.sb.blockSize, syscall.EOPNOTSUPP)
	}
	align := max(be.Uint32(f.w.sb[sbInoAlignmt:]), 1)
	why := fmt.Errorf("xfs: no free inode and no %d aligned free blocks for a new inode chunk: %w", blocks, syscall.ENOSPC)
	for k := uint32(0); k < f.sb.agCount; k++ {
		ag := (first + k) % f.sb.agCount
		a, err := s.ag(ag)
		if err != nil {
			return nil, 0, err
		}
		agbno, err := s.sp.allocAligned(ag, blocks, align, metaOwner(ownInodes))
		if err != nil {
			return nil, 0, err
		}
		if agbno == noBlock {
			continue
		}
		start := agbno << f.sb.inoPBLog
		r := irec{start: start, count: inosPerChunk, freecount: inosPerChunk, free: ^uint64(0)}
		i := sort.Search(len(a.recs), func(i int) bool { return a.recs[i].start > start })
		a.recs = append(a.recs[:i], append([]irec{r}, a.recs[i:]...)...)
		a.changed, a.added, a.newino = true, a.added+inosPerChunk, start
		a.chunks = append(a.chunks, s.chunkInit(ag, agbno, blocks))
		s.delta += inosPerChunk
		s.icount += inosPerChunk
		return a, i, nil
	}
	return nil, 0, why
}

// chunkInit is the initialised inodes of a chunk at agbno, as one write.
func (s *inodes) chunkInit(ag, agbno, blocks uint32) pending {
	f := s.f
	b := make([]byte, int64(blocks)*f.sb.blockSize)
	if !f.v5() {
		for i := 0; i < inosPerChunk; i++ {
			in := b[int64(i)*f.sb.inodeSize:]
			in[0], in[1], in[4] = 'I', 'N', 2
			be.PutUint32(in[diUnlinked:], 0xffffffff)
		}
		return pending{f.agOff(ag, agbno), b}
	}
	uuid := f.w.sb[sbUUID : sbUUID+16]
	if be.Uint32(f.w.sb[216:])&incompatMetaUID != 0 {
		uuid = f.w.sb[sbMetaUUID : sbMetaUUID+16]
	}
	first := s.inoNum(ag, agbno<<f.sb.inoPBLog)
	for i := 0; i < inosPerChunk; i++ {
		in := b[int64(i)*f.sb.inodeSize : int64(i+1)*f.sb.inodeSize]
		in[0], in[1], in[4] = 'I', 'N', 3
		be.PutUint32(in[diUnlinked:], 0xffffffff)
		be.PutUint64(in[diIno:], first+uint64(i))
		copy(in[diUUID:], uuid)
		setCRC(in, diCRC)
	}
	return pending{f.agOff(ag, agbno), b}
}

const noBlock = ^uint32(0)

// allocAligned takes n blocks of AG ag starting at a multiple of align,
// or returns noBlock when no free extent holds such a run.
func (s *space) allocAligned(ag, n, align uint32, o rmOwner) (uint32, error) {
	f := s.f
	if uint64(int64(f.w.fdblocks)+s.delta) < uint64(n)+f.w.reserve {
		return 0, fmt.Errorf("xfs: %d blocks wanted for an inode chunk, %d free beyond the reserve: %w", n, int64(f.w.fdblocks)+s.delta-int64(f.w.reserve), syscall.ENOSPC)
	}
	a, err := s.ag(ag)
	if err != nil {
		return 0, err
	}
	for i, r := range a.recs {
		start := (r.start + align - 1) / align * align
		if uint64(start)+uint64(n) <= uint64(r.start)+uint64(r.count) {
			s.use(a, i, start, uint64(n), o)
			return start, nil
		}
	}
	return noBlock, nil
}
