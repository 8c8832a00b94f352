package compress

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// LZX as cabinets use it (MS-PATCH LZX DELTA's base format, as libmspack
// and cabextract read it): one bit stream per folder across its CFDATA
// blocks, a window of 2^15..2^21 bytes, 32 KiB output frames (one per
// CFDATA), the bit stream realigned to 16 bits after each frame, code
// lengths coded as deltas from the previous block's, and the x86 E8 call
// translation undone per frame when the stream's header asks for it.
// Written here: no maintained Go module reads LZX cabinets.

var errLZX = errors.New("corrupt LZX data")

const (
	lzxNumChars    = 256
	lzxPrimaryLen  = 7
	lzxNumLenSyms  = 249
	lzxPreSyms     = 20
	lzxMaxCodeLen  = 16
	lzxBlkVerbatim = 1
	lzxBlkAligned  = 2
	lzxBlkStored   = 3
)

// lzxSlots is the number of position slots for each window size.
var lzxSlots = map[uint]int{15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}

// lzxBase and lzxExtra are the first offset and the count of extra bits
// of each position slot.
var lzxBase, lzxExtra = func() (base [51]uint32, extra [51]uint) {
	var b uint32
	for s := 0; s < 51; s++ {
		if s >= 4 {
			extra[s] = uint(min((s-2)/2, 17))
		}
		base[s] = b
		b += 1 << extra[s]
	}
	return
}()

// lzxBits reads the bit stream: 16-bit little-endian words, high bit
// first, fed CFDATA by CFDATA.
type lzxBits struct {
	in   []byte
	pos  int
	buf  uint64 // next bit is bit 63
	left uint
	more func() ([]byte, error) // the next CFDATA's bytes
	err  error
}

func (b *lzxBits) word() uint64 {
	for len(b.in)-b.pos < 2 {
		if b.more == nil || b.err != nil {
			b.err = errLZX
			return 0
		}
		next, err := b.more()
		if err != nil {
			b.err = err
			return 0
		}
		b.refill(next)
	}
	w := uint64(b.in[b.pos]) | uint64(b.in[b.pos+1])<<8
	b.pos += 2
	return w
}

// Refill gives the decoder the next CFDATA's bytes ahead of a Frame.
func (s *CabLZX) Refill(next []byte) { s.br.refill(next) }

// refill appends the next CFDATA's bytes, keeping the last 8 bytes read
// (up to four buffered words may be given back to a stored block).
func (b *lzxBits) refill(next []byte) {
	keep := max(0, b.pos-8)
	b.in = append(append([]byte(nil), b.in[keep:]...), next...)
	b.pos -= keep
}

func (b *lzxBits) ensure(n uint) {
	for b.left < n {
		b.buf |= b.word() << (48 - b.left)
		b.left += 16
	}
}

func (b *lzxBits) peek(n uint) uint32 { return uint32(b.buf >> (64 - n)) }

func (b *lzxBits) drop(n uint) { b.buf <<= n; b.left -= n }

// bits reads n ≤ 32 bits.
func (b *lzxBits) bits(n uint) uint32 {
	if n == 0 {
		return 0
	}
	b.ensure(n)
	v := b.peek(n)
	b.drop(n)
	return v
}

// align drops bits up to the next 16-bit boundary.
func (b *lzxBits) align() { b.drop(b.left & 15) }

// rawByte reads a byte of an uncompressed block: buffered whole words
// first are given back to the byte stream.
func (b *lzxBits) rawBytes(n int) []byte {
	// give back the buffered bytes (the stream is 16-bit aligned here)
	for b.left >= 16 {
		b.left -= 16
		b.pos -= 2
	}
	b.buf, b.left = 0, 0
	for len(b.in)-b.pos < n {
		if b.more == nil {
			b.err = errLZX
			return make([]byte, n)
		}
		next, err := b.more()
		if err != nil {
			b.err = err
			return make([]byte, n)
		}
		b.refill(next)
	}
	out := b.in[b.pos : b.pos+n]
	b.pos += n
	return out
}

// lzxCode is a canonical prefix code with a direct table.
type lzxCode struct {
	lens  []uint8
	table []uint16 // by the next maxLen bits: len<<12 | symbol (lengths ≤ 16, symbols < 4096)
	max   uint
	empty bool
}

func (c *lzxCode) build(lens []uint8, max uint) error {
	c.lens, c.max = lens, max
	var count [17]int
	for _, l := range lens {
		count[l]++
	}
	left := 1
	for l := 1; l <= int(max); l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return errLZX
		}
	}
	if count[0] == len(lens) {
		c.empty = true
		return nil
	}
	c.empty = false
	if left != 0 {
		return errLZX
	}
	if len(c.table) != 1<<max {
		c.table = make([]uint16, 1<<max)
	}
	code := 0
	for l := uint(1); l <= max; l++ {
		for s, sl := range lens {
			if uint(sl) != l {
				continue
			}
			span := 1 << (max - l)
			e := uint16(l)<<12 | uint16(s)
			for j := code * span; j < (code+1)*span; j++ {
				c.table[j] = e
			}
			code++
		}
		code <<= 1
	}
	return nil
}

func (c *lzxCode) decode(b *lzxBits) (int, error) {
	if c.empty {
		return 0, errLZX
	}
	b.ensure(c.max)
	e := c.table[b.peek(c.max)]
	b.drop(uint(e >> 12))
	return int(e & 0xfff), nil
}

// CabLZX decodes one cabinet folder's LZX stream, frame by frame.
type CabLZX struct {
	br        lzxBits
	window    []byte
	wpos      int
	slots     int
	mainLens  []uint8
	lenLens   [lzxNumLenSyms]uint8
	main, ln  lzxCode
	aligned   lzxCode
	pre       lzxCode
	r         [3]uint32
	blockType int
	blockLeft int
	storedPad bool
	e8        bool
	e8Size    int32
	e8Seen    bool
	started   bool
	frames    int
	// frameStartPos is where the current frame began in the window.
	frameStartPos int
	total         int64 // bytes output so far
}

// NewCabLZX starts a folder's decoder with a window of 2^windowBits
// bytes; more gives the next CFDATA's bytes when the bit stream needs them.
func NewCabLZX(windowBits uint, more func() ([]byte, error)) (*CabLZX, error) {
	slots, ok := lzxSlots[windowBits]
	if !ok {
		return nil, fmt.Errorf("LZX window 2^%d: cabinets use 2^15 to 2^21", windowBits)
	}
	return &CabLZX{br: lzxBits{more: more}, window: make([]byte, 1<<windowBits), slots: slots,
		mainLens: make([]uint8, lzxNumChars+slots*8), r: [3]uint32{1, 1, 1}}, nil
}

// Frame decodes the next n (≤ 32 KiB) bytes of the folder.
func (s *CabLZX) Frame(n int) ([]byte, error) {
	br := &s.br
	if !s.started {
		s.started = true
		if br.bits(1) == 1 {
			hi := br.bits(16)
			lo := br.bits(16)
			s.e8, s.e8Size = true, int32(hi<<16|lo)
		}
	}
	start := s.wpos
	s.frameStartPos = start
	if start+n > len(s.window) {
		return nil, errLZX // frames divide the window
	}
	for left := n; left > 0; {
		if s.blockLeft == 0 {
			if s.blockType == lzxBlkStored && s.storedPad {
				br.rawBytes(1)
			}
			if err := s.header(); err != nil {
				return nil, err
			}
		}
		run := min(left, s.blockLeft)
		var err error
		if s.blockType == lzxBlkStored {
			copy(s.window[s.wpos:], br.rawBytes(run))
			s.wpos += run
		} else {
			err = s.decode(run)
		}
		if err != nil {
			return nil, err
		}
		if br.err != nil {
			return nil, br.err
		}
		left -= run
		s.blockLeft -= run
	}
	// realign after each frame (a no-op inside a stored block: its bytes
	// leave no bits buffered)
	br.align()
	out := make([]byte, n)
	copy(out, s.window[start:start+n])
	if s.wpos == len(s.window) {
		s.wpos = 0
	}
	if s.e8 && s.e8Seen && s.frames < 32768 && n > 10 {
		lzxE8(out, int32(s.total), s.e8Size)
	}
	s.frames++
	s.total += int64(n)
	return out, nil
}

// header reads a block's type, size and codes.
func (s *CabLZX) header() error {
	br := &s.br
	s.blockType = int(br.bits(3))
	hi := br.bits(16)
	s.blockLeft = int(hi<<8 | br.bits(8))
	if s.blockLeft == 0 {
		return errLZX
	}
	switch s.blockType {
	case lzxBlkAligned:
		var al [8]uint8
		for i := range al {
			al[i] = uint8(br.bits(3))
		}
		if err := s.aligned.build(al[:], 7); err != nil {
			return err
		}
		fallthrough
	case lzxBlkVerbatim:
		if err := s.lengths(s.mainLens[:lzxNumChars]); err != nil {
			return err
		}
		if err := s.lengths(s.mainLens[lzxNumChars:]); err != nil {
			return err
		}
		if err := s.main.build(s.mainLens, lzxMaxCodeLen); err != nil {
			return err
		}
		if s.mainLens[0xe8] != 0 {
			s.e8Seen = true
		}
		if err := s.lengths(s.lenLens[:]); err != nil {
			return err
		}
		return s.ln.build(s.lenLens[:], lzxMaxCodeLen)
	case lzxBlkStored:
		s.e8Seen = true
		// 1-16 bits of padding to a 16-bit boundary (a whole word when
		// aligned already), then R0-R2 as bytes
		if partial := br.left & 15; partial != 0 {
			br.drop(partial)
		} else {
			br.ensure(16)
			br.drop(16)
		}
		raw := br.rawBytes(12)
		for i := range s.r {
			s.r[i] = binary.LittleEndian.Uint32(raw[i*4:])
		}
		s.storedPad = s.blockLeft&1 == 1
		return nil
	}
	return fmt.Errorf("%w: block type %d", errLZX, s.blockType)
}

// lengths reads a pretree and the code lengths it codes, as deltas from
// the previous lengths (mod 17) and runs.
func (s *CabLZX) lengths(lens []uint8) error {
	br := &s.br
	var pl [lzxPreSyms]uint8
	for i := range pl {
		pl[i] = uint8(br.bits(4))
	}
	if err := s.pre.build(pl[:], 15); err != nil {
		return err
	}
	for i := 0; i < len(lens); {
		sym, err := s.pre.decode(br)
		if err != nil {
			return err
		}
		switch {
		case sym < 17:
			lens[i] = uint8((int(lens[i]) + 17 - sym) % 17)
			i++
		case sym == 17:
			for run := 4 + int(br.bits(4)); run > 0 && i < len(lens); run-- {
				lens[i] = 0
				i++
			}
		case sym == 18:
			for run := 20 + int(br.bits(5)); run > 0 && i < len(lens); run-- {
				lens[i] = 0
				i++
			}
		default:
			run := 4 + int(br.bits(1))
			z, err := s.pre.decode(br)
			if err != nil || z > 16 {
				return errLZX
			}
			v := uint8((int(lens[i]) + 17 - z) % 17)
			for ; run > 0 && i < len(lens); run-- {
				lens[i] = v
				i++
			}
		}
	}
	return nil
}

// decode decodes n bytes of a verbatim or aligned block into the window.
func (s *CabLZX) decode(n int) error {
	br := &s.br
	w := s.window
	mask := len(w) - 1
	for n > 0 {
		sym, err := s.main.decode(br)
		if err != nil {
			return err
		}
		if sym < lzxNumChars {
			w[s.wpos] = byte(sym)
			s.wpos++
			n--
			continue
		}
		sym -= lzxNumChars
		length, slot := sym&7, sym>>3
		if length == lzxPrimaryLen {
			l, err := s.ln.decode(br)
			if err != nil {
				return err
			}
			length += l
		}
		length += 2
		off, err := s.offset(slot)
		if err != nil {
			return err
		}
		if length > n || int64(off) > s.total+int64(s.wpos-s.frameStartPos) || int(off) > len(w) {
			return errLZX
		}
		src := (s.wpos - int(off)) & mask
		for i := 0; i < length; i++ {
			w[s.wpos] = w[src]
			s.wpos++
			src = (src + 1) & mask
		}
		n -= length
	}
	return nil
}

func (s *CabLZX) offset(slot int) (uint32, error) {
	if slot >= s.slots {
		return 0, errLZX
	}
	if slot < 3 {
		off := s.r[slot]
		s.r[slot] = s.r[0]
		s.r[0] = off
		return off, nil
	}
	br := &s.br
	extra := lzxExtra[slot]
	off := lzxBase[slot] - 2
	switch {
	case s.blockType == lzxBlkAligned && extra >= 3:
		off += br.bits(extra-3) << 3
		a, err := s.aligned.decode(br)
		if err != nil {
			return 0, err
		}
		off += uint32(a)
	default:
		off += br.bits(extra)
	}
	s.r[2], s.r[1], s.r[0] = s.r[1], s.r[0], off
	return off, nil
}

// lzxE8 undoes the E8 call translation in one frame that starts at pos.
func lzxE8(b []byte, pos, size int32) {
	for i := 0; i < len(b)-10; {
		if b[i] != 0xe8 {
			i++
			pos++
			continue
		}
		abs := int32(binary.LittleEndian.Uint32(b[i+1:]))
		if abs >= -pos && abs < size {
			rel := abs - pos
			if abs < 0 {
				rel = abs + size
			}
			binary.LittleEndian.PutUint32(b[i+1:], uint32(rel))
		}
		i += 5
		pos += 5
	}
}
