package hive

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// patch holds the hive bins an in-place save changes: each bin it touches
// is copied whole (the model keeps reading the old bytes, which stay the
// file's until the save is written), and the free cells of the copied bins,
// those it frees included, are where new cells go first (best fit, split
// when bigger), as Windows' allocator reuses free cells before it grows the
// hive.
type patch struct {
	h      *Hive
	bins   map[uint32][]byte // bin start → the bin's new bytes
	free   []extent          // free cells of the copied bins, by size
	starts []uint32          // bin starts of an in-memory hive, found once
}

type extent struct{ off, size uint32 }

func newPatch(h *Hive) *patch { return &patch{h: h, bins: map[uint32][]byte{}} }

// bin returns the copy of the hive bin holding off (copying it first).
func (p *patch) bin(off uint32) (uint32, []byte, error) {
	start, size, err := p.binAt(off)
	if err != nil {
		return 0, nil, err
	}
	if b, ok := p.bins[start]; ok {
		return start, b, nil
	}
	var src []byte
	if p.h.lazy != nil {
		if err := p.h.fill(start, uint64(size)); err != nil {
			return 0, nil, err
		}
		src = p.h.bytesAt(uint64(start), uint64(size))
	} else {
		src = p.h.data[start : start+size]
	}
	b := append([]byte(nil), src...)
	if err := p.harvest(start, b); err != nil {
		return 0, nil, err
	}
	p.bins[start] = b
	return start, b, nil
}

// binAt finds the start and size of the hive bin holding off.
func (p *patch) binAt(off uint32) (uint32, uint32, error) {
	h := p.h
	if uint64(off)+4 > uint64(h.limit) {
		return 0, 0, fmt.Errorf("cell offset 0x%x outside the hive bins data: %w", off, ErrCorrupt)
	}
	if z := h.lazy; z != nil {
		if err := h.fill(off&^7, 4); err != nil {
			return 0, 0, err
		}
		first := z.bin[off/pageSize].Load() - 1
		if first < 0 {
			return 0, 0, fmt.Errorf("no sound hive bin holds offset 0x%x: %w", off, ErrCorrupt)
		}
		return uint32(first) * pageSize, uint32(len(z.page(int(first)))), nil
	}
	if p.starts == nil {
		for pos := uint32(0); pos+hbinHeaderLen <= h.limit; {
			size := binary.LittleEndian.Uint32(h.data[pos+8:])
			if size < binSize || size%binSize != 0 {
				return 0, 0, fmt.Errorf("hive bin at 0x%x has bad size 0x%x: %w", pos, size, ErrCorrupt)
			}
			p.starts = append(p.starts, pos)
			pos += size
		}
	}
	i := sort.Search(len(p.starts), func(i int) bool { return p.starts[i] > off }) - 1
	if i < 0 {
		return 0, 0, fmt.Errorf("no hive bin holds offset 0x%x: %w", off, ErrCorrupt)
	}
	return p.starts[i], binary.LittleEndian.Uint32(h.data[p.starts[i]+8:]), nil
}

// harvest walks a copied bin's cells, checking the chain of sizes, and
// keeps its free cells for reuse.
func (p *patch) harvest(start uint32, b []byte) error {
	for pos := uint32(hbinHeaderLen); pos < uint32(len(b)); {
		s := int32(binary.LittleEndian.Uint32(b[pos:]))
		n := uint32(s)
		if s < 0 {
			n = uint32(-s)
		}
		if n < 8 || n%8 != 0 || uint64(pos)+uint64(n) > uint64(len(b)) {
			return fmt.Errorf("hive bin at 0x%x: cell at 0x%x has size %d, not a cell boundary: %w", start, start+pos, s, ErrCorrupt)
		}
		if s > 0 {
			p.addFree(extent{start + pos, n})
		}
		pos += n
	}
	return nil
}

// cell returns the whole cell at off (its size field first) in the copy.
func (p *patch) cell(off uint32) ([]byte, error) {
	start, b, err := p.bin(off)
	if err != nil {
		return nil, err
	}
	rel := off - start
	if off&7 != 0 || uint64(rel)+4 > uint64(len(b)) {
		return nil, fmt.Errorf("cell offset 0x%x: %w", off, ErrCorrupt)
	}
	s := int32(binary.LittleEndian.Uint32(b[rel:]))
	n := uint32(s)
	if s < 0 {
		n = uint32(-s)
	}
	if n < 8 || uint64(rel)+uint64(n) > uint64(len(b)) {
		return nil, fmt.Errorf("cell at 0x%x claims %d bytes, past its hive bin: %w", off, s, ErrCorrupt)
	}
	return b[rel : rel+n], nil
}

// release marks the allocated cell at off free. Freeing a cell twice means
// two references to it: the hive is corrupt, and the save is not made.
func (p *patch) release(off uint32) error {
	c, err := p.cell(off)
	if err != nil {
		return err
	}
	s := int32(binary.LittleEndian.Uint32(c))
	if s > 0 {
		return fmt.Errorf("cell at 0x%x is referenced twice (or already free): %w", off, ErrCorrupt)
	}
	binary.LittleEndian.PutUint32(c, uint32(-s))
	p.addFree(extent{off, uint32(-s)})
	return nil
}

func (p *patch) addFree(e extent) {
	i := sort.Search(len(p.free), func(i int) bool { return p.free[i].size >= e.size })
	p.free = append(p.free, extent{})
	copy(p.free[i+1:], p.free[i:])
	p.free[i] = e
}

// alloc takes a free cell of exactly size bytes, or splits a bigger one
// (the rest stays free): cells keep the size their data asks for.
func (p *patch) alloc(size int) (uint32, bool) {
	n := uint32(size)
	i := sort.Search(len(p.free), func(i int) bool { return p.free[i].size >= n })
	for i < len(p.free) && p.free[i].size != n && p.free[i].size < n+8 {
		i++
	}
	if i == len(p.free) {
		return 0, false
	}
	e := p.free[i]
	p.free = append(p.free[:i], p.free[i+1:]...)
	c, err := p.cell(e.off)
	if err != nil {
		return 0, false
	}
	clear(c[:n])
	binary.LittleEndian.PutUint32(c, uint32(-int32(n)))
	if e.size > n {
		binary.LittleEndian.PutUint32(c[n:], e.size-n)
		p.addFree(extent{e.off + n, e.size - n})
	}
	return e.off, true
}

// data is the writable data of an allocated cell the patch holds.
func (p *patch) data(off uint32) []byte {
	c, err := p.cell(off)
	if err != nil {
		return nil // not reached: off came from alloc, in a copied bin
	}
	return c[4:]
}

// coalesce joins neighbouring free cells in every copied bin, as Windows
// does when it frees a cell.
func (p *patch) coalesce() {
	for _, b := range p.bins {
		run := -1 // offset of the free cell the next free one joins
		for pos := hbinHeaderLen; pos < len(b); {
			s := int32(binary.LittleEndian.Uint32(b[pos:]))
			n := int(s)
			if s < 0 {
				n = int(-s)
			}
			switch {
			case s < 0:
				run = -1
			case run < 0:
				run = pos
			default:
				joined := binary.LittleEndian.Uint32(b[run:]) + uint32(n)
				binary.LittleEndian.PutUint32(b[run:], joined)
			}
			pos += n
		}
	}
}

// writes gives the copied bins as writes into the hive file, neighbouring
// bins joined.
func (p *patch) writes() []Write {
	starts := make([]uint32, 0, len(p.bins))
	for s := range p.bins {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	var out []Write
	for _, s := range starts {
		b := p.bins[s]
		off := int64(s) + baseBlockSize
		if n := len(out); n > 0 && out[n-1].Off+int64(len(out[n-1].Data)) == off {
			out[n-1].Data = append(out[n-1].Data, b...)
			continue
		}
		out = append(out, Write{Off: off, Data: append([]byte(nil), b...)})
	}
	return out
}
