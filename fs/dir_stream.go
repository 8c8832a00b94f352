package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/volume"
)

// prefetchBatch is how many entries ahead a listing asks the engine to
// read: about one READDIRPLUS reply (4 KiB pages of ~150-byte entries,
// the kernel asking for several pages at a time).
const prefetchBatch = 64

// prefetchStream lists a directory and, as readdirplus takes its entries
// (go-fuse looks each one up after taking it), has the engine read ahead
// the next prefetchBatch entries' metadata at once. Only as far as the
// kernel reads: a listing stopped early, or a huge directory, reads no
// more than one batch past what was taken.
type prefetchStream struct {
	ents []fuse.DirEntry
	inos []volume.Ino
	next int
	pf   volume.Prefetcher
}

func newDirStream(vc *volCtx, ents []volume.DirEntry) fs.DirStream {
	out := make([]fuse.DirEntry, len(ents))
	for i, d := range ents {
		out[i] = fuse.DirEntry{Name: d.Name, Ino: vc.fuseIno(d.Ino), Mode: unixMode(d.Mode) & syscall.S_IFMT}
	}
	pf, ok := vc.fs.(volume.Prefetcher)
	if !ok {
		return fs.NewListDirStream(out)
	}
	inos := make([]volume.Ino, len(ents))
	for i, d := range ents {
		inos[i] = d.Ino
	}
	return &prefetchStream{ents: out, inos: inos, pf: pf}
}

func (s *prefetchStream) HasNext() bool { return s.next < len(s.ents) }

func (s *prefetchStream) Next() (fuse.DirEntry, syscall.Errno) {
	if s.next%prefetchBatch == 0 {
		s.pf.Prefetch(s.inos[s.next:min(s.next+prefetchBatch, len(s.inos))])
	}
	s.next++
	return s.ents[s.next-1], 0
}

func (s *prefetchStream) Close() {}
