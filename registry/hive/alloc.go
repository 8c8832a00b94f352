package hive

import "encoding/binary"

const (
	binSize   = 4096
	openTails = 16 // how many recent bins with room a new cell may go into
)

// allocator lays cells into hive bins. Nothing is ever freed: Serialize
// writes each live cell once. A cell goes into the first of the last few
// bins with room for it (first fit, as Windows' allocator does), so the
// tails of bins do not add up to waste.
type allocator struct {
	buf   []byte
	tails []binTail // bins that still have room, oldest first
	stamp uint64    // FILETIME for the first hive bin's header
	// An in-place save (save.go) appends its bins after the hive's own:
	// base is their offset in the hive bins data, and cells below it live
	// in reuse's copies of the existing bins, whose free cells are used
	// first.
	base  uint32
	reuse *patch
}

type binTail struct{ used, end int }

// alloc reserves an allocated cell for n bytes of data and returns its
// offset; the data starts 4 bytes after it.
func (a *allocator) alloc(n int) uint32 {
	size := (n + 4 + 7) &^ 7
	if a.reuse != nil {
		if off, ok := a.reuse.alloc(size); ok {
			return off
		}
	}
	i := a.fit(size)
	if i < 0 {
		a.openBin(max(binSize, (size+hbinHeaderLen+binSize-1)/binSize*binSize))
		i = len(a.tails) - 1
	}
	t := &a.tails[i]
	off := t.used
	t.used += size
	binary.LittleEndian.PutUint32(a.buf[off:], uint32(-int32(size)))
	if t.end-t.used < 16 {
		a.closeTail(i)
	}
	return a.base + uint32(off)
}

func (a *allocator) fit(size int) int {
	for i, t := range a.tails {
		if t.end-t.used >= size {
			return i
		}
	}
	return -1
}

// data is the writable data of the cell at off.
func (a *allocator) data(off uint32) []byte {
	if off < a.base {
		return a.reuse.data(off)
	}
	off -= a.base
	size := -int32(binary.LittleEndian.Uint32(a.buf[off:]))
	return a.buf[off+4 : off+uint32(size)]
}

func (a *allocator) openBin(size int) {
	start := len(a.buf)
	a.buf = append(a.buf, make([]byte, size)...)
	h := a.buf[start:]
	copy(h, "hbin")
	binary.LittleEndian.PutUint32(h[4:], a.base+uint32(start))
	binary.LittleEndian.PutUint32(h[8:], uint32(size))
	if a.base+uint32(start) == 0 {
		binary.LittleEndian.PutUint64(h[20:], a.stamp)
	}
	a.tails = append(a.tails, binTail{used: start + hbinHeaderLen, end: start + size})
	if len(a.tails) > openTails {
		a.closeTail(0)
	}
}

// closeTail fills what is left of a bin with one free cell and forgets it.
func (a *allocator) closeTail(i int) {
	t := a.tails[i]
	if rest := t.end - t.used; rest > 0 {
		binary.LittleEndian.PutUint32(a.buf[t.used:], uint32(rest))
	}
	a.tails = append(a.tails[:i], a.tails[i+1:]...)
}

// finish closes every bin.
func (a *allocator) finish() {
	for len(a.tails) > 0 {
		a.closeTail(0)
	}
}
