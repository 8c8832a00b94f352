// Package alloc is the allocation bitmap the engines share: NTFS's
// $Bitmap and MFT bitmap, ext4's block and inode bitmaps. All of them keep
// bit i in byte i/8 at position i%8 (least significant first), so one type
// and one extent search serve them; each engine keeps what is its own (where
// the bytes live on disk, checksums, counters, undo).
package alloc

// Bitmap is a bitmap over a byte slice it does not copy: a set bit is in use.
type Bitmap []byte

// Len is the number of bits b holds.
func (b Bitmap) Len() int64 { return int64(len(b)) * 8 }

// Get reports whether bit i is set.
func (b Bitmap) Get(i int64) bool { return b[i>>3]&(1<<(i&7)) != 0 }

// Put sets bit i to on.
func (b Bitmap) Put(i int64, on bool) {
	if on {
		b[i>>3] |= 1 << (i & 7)
	} else {
		b[i>>3] &^= 1 << (i & 7)
	}
}

// PutRange sets the n bits from lo on to on.
func (b Bitmap) PutRange(lo, n int64, on bool) {
	for i := lo; i < lo+n; i++ {
		b.Put(i, on)
	}
}

// AllSet reports whether the n bits from lo on are all set: freeing space
// that is already free means the volume and the caller disagree.
func (b Bitmap) AllSet(lo, n int64) bool {
	for i := lo; i < lo+n; i++ {
		if !b.Get(i) {
			return false
		}
	}
	return true
}

// NextClear returns the first clear bit in [from, to), or -1. Whole bytes
// in use are skipped eight bits at a time: a nearly full volume is the
// case where allocation must stay fast.
func (b Bitmap) NextClear(from, to int64) int64 {
	for i := from; i < to; i++ {
		if i&7 == 0 && i+8 <= to && b[i>>3] == 0xff {
			i += 7
			continue
		}
		if !b.Get(i) {
			return i
		}
	}
	return -1
}

// ClearRun returns the first clear bit in [from, to) and how many clear
// bits follow it there, at most max: the first free extent, for engines
// that take what they find (ext4 allocates a file's blocks run by run).
func (b Bitmap) ClearRun(from, to, max int64) (start, n int64) {
	start = b.NextClear(from, to)
	if start < 0 {
		return -1, 0
	}
	for n = 1; n < max && start+n < to && !b.Get(start+n); n++ {
	}
	return start, n
}

// FindClear returns the first run of n clear bits lying within [from, to),
// or -1: for engines that want a file in one piece when they can.
func (b Bitmap) FindClear(from, to, n int64) int64 {
	for i := from; i+n <= to; {
		s, got := b.ClearRun(i, to, n)
		if s < 0 {
			return -1
		}
		if got == n {
			return s
		}
		i = s + got
	}
	return -1
}

// Extent is a run of bits: Start and Len.
type Extent struct{ Start, Len int64 }

// Gather collects n clear bits of [0, limit) in pieces, first ones first,
// or returns nil when there are fewer: the fallback when no single run is
// long enough.
func (b Bitmap) Gather(limit, n int64) []Extent {
	var out []Extent
	for i := int64(0); i < limit && n > 0; {
		s, got := b.ClearRun(i, limit, n)
		if s < 0 {
			break
		}
		out = append(out, Extent{s, got})
		n -= got
		i = s + got
	}
	if n > 0 {
		return nil
	}
	return out
}
