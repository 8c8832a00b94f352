package vmdk

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// gteZeroed marks a grain that reads as zeros even in a child, when the
// header's zeroed-grain flag is set.
const gteZeroed = 1

// maxCachedGTs bounds the grain tables kept in memory (2 KiB each with the
// usual 512 entries: 16 MiB, the tables of a 256 GiB disk).
const maxCachedGTs = 8192

// sparse is one hosted sparse extent: header, grain directory (and its
// redundant copy), grain tables loaded on demand.
type sparse struct {
	f          vdisk.File
	hdr        header
	grainBytes int64
	gtBytes    int64
	capacity   int64 // bytes, from the header
	compressed bool
	markers    bool
	zeroGrain  bool

	// The fields below change only under the disk's write lock, except the
	// cache, which readers fill under mu.
	gd, rgd   []uint32 // rgd is nil without a redundant directory
	fileSize  int64    // host file length, grown by allocations
	next      int64    // where the next grain or table goes
	gdDirty   span
	gtDirty   map[uint32]span
	mu        sync.Mutex
	gts       map[uint32][]uint32
	streamEnd int64 // file size when read: bound for compressed grains
	metaEnd   int64 // end of header and tables: no grain lies before it
}

// span is a range [lo, hi) of table entries to write back.
type span struct{ lo, hi uint32 }

func (s span) empty() bool { return s.hi <= s.lo }

func (s span) add(i uint32) span {
	if s.empty() {
		return span{i, i + 1}
	}
	return span{min(s.lo, i), max(s.hi, i+1)}
}

func openSparse(f vdisk.File) (*sparse, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("vmdk %s: %w", f.Name(), err)
	}
	h, err := loadHeader(f, size)
	if err != nil {
		return nil, err
	}
	s := &sparse{
		f: f, hdr: h, fileSize: size, streamEnd: size,
		grainBytes: int64(h.GrainSize) * sector,
		gtBytes:    int64(h.NumGTEsPerGT) * 4,
		capacity:   int64(h.Capacity) * sector,
		compressed: h.Flags&flagCompressed != 0,
		markers:    h.Flags&flagMarkers != 0,
		zeroGrain:  h.Flags&flagZeroGrain != 0,
		next:       (size + sector - 1) / sector * sector,
		gtDirty:    map[uint32]span{},
		gts:        map[uint32][]uint32{},
	}
	n := gdEntries(h)
	if s.gd, err = s.readDir(int64(h.GDOffset), n); err != nil {
		return nil, err
	}
	if h.Flags&flagRedundantGT != 0 && h.RGDOffset != 0 {
		if s.rgd, err = s.readDir(int64(h.RGDOffset), n); err != nil {
			return nil, err
		}
	}
	// Grains never go into the metadata area, even when a freshly made file
	// ends before it; a header claiming an area past the end is ignored.
	if meta := int64(h.OverHead) * sector; h.OverHead <= uint64(s.next/sector) {
		s.metaEnd = meta
	}
	return s, nil
}

// readDir reads a grain directory and checks that every table it names
// lies inside the file.
func (s *sparse) readDir(sec int64, n uint64) ([]uint32, error) {
	buf := make([]byte, n*4) // bounded by the file size in checkHeader
	if _, err := s.f.ReadAt(buf, sec*sector); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk %s: reading grain directory: %w", s.f.Name(), err)
	}
	dir := make([]uint32, n)
	for i := range dir {
		dir[i] = binary.LittleEndian.Uint32(buf[i*4:])
		if dir[i] != 0 && int64(dir[i])*sector+s.gtBytes > s.fileSize {
			return nil, fmt.Errorf("vmdk %s: grain directory entry %d points past end of file: %w", s.f.Name(), i, vdisk.ErrCorrupt)
		}
	}
	return dir, nil
}

// gte returns the grain table entry of grain gi (0: unallocated).
func (s *sparse) gte(gi int64) (uint32, error) {
	gdi := uint64(gi) / uint64(s.hdr.NumGTEsPerGT)
	if gi < 0 || gdi >= uint64(len(s.gd)) || s.gd[gdi] == 0 {
		return 0, nil
	}
	gt, err := s.table(uint32(gdi))
	if err != nil {
		return 0, err
	}
	return gt[uint64(gi)%uint64(s.hdr.NumGTEsPerGT)], nil
}

// table returns grain table gdi from the cache, reading it on a miss.
func (s *sparse) table(gdi uint32) ([]uint32, error) {
	s.mu.Lock()
	gt, ok := s.gts[gdi]
	s.mu.Unlock()
	if ok {
		return gt, nil
	}
	buf := make([]byte, s.gtBytes)
	if _, err := s.f.ReadAt(buf, int64(s.gd[gdi])*sector); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk %s: reading grain table %d: %w", s.f.Name(), gdi, err)
	}
	gt = make([]uint32, s.hdr.NumGTEsPerGT)
	for i := range gt {
		gt[i] = binary.LittleEndian.Uint32(buf[i*4:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cached, ok := s.gts[gdi]; ok { // another reader was faster
		return cached, nil
	}
	s.evict()
	s.gts[gdi] = gt
	return gt, nil
}

// evict drops clean tables when the cache is full; dirty ones stay until
// Flush writes them.
func (s *sparse) evict() {
	if len(s.gts) < maxCachedGTs {
		return
	}
	for k := range s.gts {
		if _, dirty := s.gtDirty[k]; !dirty {
			delete(s.gts, k)
		}
		if len(s.gts) < maxCachedGTs/2 {
			return
		}
	}
}
