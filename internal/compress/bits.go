package compress

import "errors"

// The XPRESS Huffman and LZX decoders (WOF "System Compression") share a
// bit reader and a canonical Huffman decoder. Both formats store bits in
// little-endian 16-bit words read from the high bit down, with whole bytes
// (XPRESS match lengths, LZX uncompressed blocks) interleaved at the
// current word position. When a word is loaded matters for where those
// bytes come from, so refills happen exactly when the reference decoder
// (ntfs-3g-system-compression / wimlib) does them: a word is loaded when
// fewer bits than asked are buffered. Bits past the end read as zeros.

var errBadChunk = errors.New("corrupt compressed chunk")

type bitReader struct {
	in   []byte
	pos  int
	buf  uint32 // left-justified: the next bit is bit 31
	left uint   // bits held in buf
}

func (b *bitReader) ensure(n uint) {
	if b.left < n {
		if len(b.in)-b.pos >= 2 {
			w := uint32(b.in[b.pos]) | uint32(b.in[b.pos+1])<<8
			b.buf |= w << (16 - b.left)
			b.pos += 2
		}
		b.left += 16
	}
}

func (b *bitReader) peek(n uint) uint32 {
	if n == 0 {
		return 0
	}
	return b.buf >> (32 - n)
}

func (b *bitReader) drop(n uint) {
	b.buf <<= n
	b.left -= n
}

// bits reads n ≤ 16 bits.
func (b *bitReader) bits(n uint) uint32 {
	b.ensure(n)
	v := b.peek(n)
	b.drop(n)
	return v
}

func (b *bitReader) byte() byte {
	if b.pos >= len(b.in) {
		return 0
	}
	b.pos++
	return b.in[b.pos-1]
}

func (b *bitReader) u16() uint32 {
	if len(b.in)-b.pos < 2 {
		return 0
	}
	b.pos += 2
	return uint32(b.in[b.pos-2]) | uint32(b.in[b.pos-1])<<8
}

func (b *bitReader) u32() uint32 {
	if len(b.in)-b.pos < 4 {
		return 0
	}
	lo := b.u16()
	return lo | b.u16()<<16
}

// align drops the buffered bits; a reader already on a word boundary
// first loads (and so skips) one word, as LZX uncompressed blocks want.
func (b *bitReader) align() {
	b.ensure(1)
	b.buf, b.left = 0, 0
}

// huffTableBits is the size of the direct lookup; longer codes are
// decoded by walking the canonical code one bit at a time.
const huffTableBits = 10

// huffman is a canonical prefix code.
type huffman struct {
	maxLen uint
	empty  bool
	count  [17]uint16 // symbols per code length
	sorted []uint16   // symbols by (length, value)
	table  [1 << huffTableBits]uint16
}

// build makes the code from lengths; it refuses over-subscribed and
// incomplete codes, except the empty one (allowed by both formats: it
// decodes as symbol 0 taking no bits, as the reference does).
func (h *huffman) build(lens []uint8, maxLen uint) error {
	h.maxLen = maxLen
	h.count = [17]uint16{}
	for _, l := range lens {
		if uint(l) > maxLen {
			return errBadChunk
		}
		h.count[l]++
	}
	left := 1
	for l := uint(1); l <= maxLen; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return errBadChunk
		}
	}
	h.empty = left == 1<<maxLen
	if h.empty {
		return nil
	}
	if left != 0 {
		return errBadChunk
	}
	var offs [18]uint16
	for l := 1; l < 17; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.sorted = h.sorted[:0]
	h.sorted = append(h.sorted, make([]uint16, int(offs[17]))...)
	for s, l := range lens {
		if l != 0 {
			h.sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	h.fillTable()
	return nil
}

// fillTable stores, for every code of at most huffTableBits bits, its
// symbol and length (length<<11 | symbol) in all slots it prefixes; 0
// marks a longer code.
func (h *huffman) fillTable() {
	tb := min(uint(huffTableBits), h.maxLen)
	clear(h.table[:])
	code, idx := 0, 0
	for l := uint(1); l <= tb; l++ {
		for i := 0; i < int(h.count[l]); i++ {
			shift := huffTableBits - l
			e := uint16(l)<<11 | h.sorted[idx]
			for j := code << shift; j < (code+1)<<shift; j++ {
				h.table[j] = e
			}
			code++
			idx++
		}
		code <<= 1
	}
}

// decode reads one symbol; the caller has ensured maxLen bits.
func (h *huffman) decode(b *bitReader) uint16 {
	if h.empty {
		return 0
	}
	if e := h.table[b.peek(huffTableBits)]; e != 0 {
		b.drop(uint(e >> 11))
		return e & 0x7ff
	}
	// Canonical walk: codes of length l start at first and run count[l].
	bits := b.peek(h.maxLen)
	code, first, idx := 0, 0, 0
	for l := uint(1); l <= h.maxLen; l++ {
		code |= int(bits>>(h.maxLen-l)) & 1
		n := int(h.count[l])
		if d := code - first; d >= 0 && d < n {
			b.drop(l)
			return h.sorted[idx+d]
		}
		idx += n
		first = (first + n) << 1
		code <<= 1
	}
	return 0 // unreachable for a complete code
}
