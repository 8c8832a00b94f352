package compress

import "encoding/binary"

// LZX as WIM and WOF use it: a 32 KiB window equal to the chunk, each
// chunk decoded on its own (code lengths start at zero, recent offsets at
// 1), no header, and the x86 CALL (E8) translation always undone with the
// fixed "file size" 12000000.

const (
	lzxChars        = 256
	lzxMinMatch     = 2
	lzxPrimaryLens  = 7
	lzxLenHeaders   = lzxPrimaryLens + 1
	lzxOffsetSlots  = 30
	lzxMainSymbols  = lzxChars + lzxOffsetSlots*lzxLenHeaders
	lzxLenSymbols   = 249
	lzxPreSymbols   = 20
	lzxAlignedBits  = 3
	lzxMaxLen       = 16
	lzxPreMaxLen    = 15
	lzxAlignedMax   = 7
	lzxDefaultBlock = 32768
	lzxE8FileSize   = 12000000

	lzxVerbatim     = 1
	lzxAligned      = 2
	lzxUncompressed = 3
)

// lzxSlotBase and lzxExtraBits map an offset slot to its first formatted
// offset and the number of bits that follow it.
var lzxSlotBase, lzxExtraBits = func() (base [lzxOffsetSlots]uint32, extra [lzxOffsetSlots]uint) {
	var b uint32
	for s := range lzxOffsetSlots {
		if s >= 4 {
			extra[s] = uint(s/2 - 1)
		}
		base[s] = b
		b += 1 << extra[s]
	}
	return
}()

type lzxDecoder struct {
	br                   bitReader
	mainLens             [lzxMainSymbols]uint8
	lenLens              [lzxLenSymbols]uint8
	main, length, align  huffman
	pre                  huffman
	recent               [3]uint32
	blockType, blockSize int
}

// LZX decodes in into exactly len(out) bytes (at most 32 KiB).
func LZX(in, out []byte) error {
	if len(out) > lzxDefaultBlock {
		return errBadChunk
	}
	d := &lzxDecoder{br: bitReader{in: in}, recent: [3]uint32{1, 1, 1}}
	e8 := false
	for n := 0; n < len(out); {
		if err := d.readHeader(); err != nil {
			return err
		}
		if d.blockSize < 1 || d.blockSize > len(out)-n {
			return errBadChunk
		}
		end := n + d.blockSize
		if d.blockType == lzxUncompressed {
			if len(d.br.in)-d.br.pos < d.blockSize {
				return errBadChunk
			}
			n += copy(out[n:end], d.br.in[d.br.pos:])
			d.br.pos += d.blockSize
			if d.blockSize&1 != 0 {
				d.br.byte()
			}
			e8 = true
			continue
		}
		if err := d.decodeBlock(out, n, end); err != nil {
			return err
		}
		n = end
		e8 = e8 || d.mainLens[0xe8] != 0
	}
	if e8 {
		lzxUndoE8(out)
	}
	return nil
}

// readHeader reads a block's type and size and its codes (or, for an
// uncompressed block, the recent offsets).
func (d *lzxDecoder) readHeader() error {
	br := &d.br
	br.ensure(4)
	d.blockType = int(br.peek(3))
	br.drop(3)
	big := br.peek(1)
	br.drop(1)
	if big != 0 {
		d.blockSize = lzxDefaultBlock
	} else {
		d.blockSize = int(br.bits(8))<<8 | int(br.bits(8))
	}
	switch d.blockType {
	case lzxAligned:
		var al [8]uint8
		for i := range al {
			al[i] = uint8(br.bits(3))
		}
		if err := d.align.build(al[:], lzxAlignedMax); err != nil {
			return err
		}
		fallthrough
	case lzxVerbatim:
		if err := d.readLens(d.mainLens[:lzxChars]); err != nil {
			return err
		}
		if err := d.readLens(d.mainLens[lzxChars:]); err != nil {
			return err
		}
		if err := d.main.build(d.mainLens[:], lzxMaxLen); err != nil {
			return err
		}
		if err := d.readLens(d.lenLens[:]); err != nil {
			return err
		}
		return d.length.build(d.lenLens[:], lzxMaxLen)
	case lzxUncompressed:
		br.align()
		for i := range d.recent {
			d.recent[i] = br.u32()
			if d.recent[i] == 0 {
				return errBadChunk
			}
		}
		return nil
	}
	return errBadChunk
}

// readLens reads a pretree, then code lengths coded with it as deltas
// from the previous block's lengths (mod 17) and runs. A run past the end
// is cut off (the reference lets it spill; only invalid data does that).
func (d *lzxDecoder) readLens(lens []uint8) error {
	br := &d.br
	var pl [lzxPreSymbols]uint8
	for i := range pl {
		pl[i] = uint8(br.bits(4))
	}
	if err := d.pre.build(pl[:], lzxPreMaxLen); err != nil {
		return err
	}
	delta := func(old uint8, sym uint16) uint8 {
		return uint8((int(old) - int(sym) + 17) % 17)
	}
	for i := 0; i < len(lens); {
		br.ensure(lzxPreMaxLen)
		sym := d.pre.decode(br)
		if sym < 17 {
			lens[i] = delta(lens[i], sym)
			i++
			continue
		}
		var run int
		var v uint8
		switch sym {
		case 17:
			run = 4 + int(br.bits(4))
		case 18:
			run = 20 + int(br.bits(5))
		default:
			run = 4 + int(br.bits(1))
			br.ensure(lzxPreMaxLen)
			s := d.pre.decode(br)
			if s > 17 {
				return errBadChunk
			}
			v = delta(lens[i], s)
		}
		for ; run > 0 && i < len(lens); run-- {
			lens[i] = v
			i++
		}
	}
	return nil
}

// decodeBlock decodes literals and matches into out[n:end].
func (d *lzxDecoder) decodeBlock(out []byte, n, end int) error {
	br := &d.br
	for n < end {
		br.ensure(lzxMaxLen)
		sym := int(d.main.decode(br))
		if sym < lzxChars {
			out[n] = byte(sym)
			n++
			continue
		}
		sym -= lzxChars
		length, slot := sym%lzxLenHeaders, sym/lzxLenHeaders
		if length == lzxPrimaryLens {
			br.ensure(lzxMaxLen)
			length += int(d.length.decode(br))
		}
		length += lzxMinMatch
		off := d.offset(slot)
		if length > end-n || int(off) > n {
			return errBadChunk
		}
		n = lzCopy(out, n, int(off), length)
	}
	return nil
}

// offset decodes a match offset from its slot and updates the recent
// offsets (slots 0-2 name them; using one swaps it to the front).
func (d *lzxDecoder) offset(slot int) uint32 {
	if slot < 3 {
		off := d.recent[slot]
		d.recent[slot] = d.recent[0]
		d.recent[0] = off
		return off
	}
	br := &d.br
	extra := lzxExtraBits[slot]
	off := lzxSlotBase[slot]
	if d.blockType == lzxAligned && extra >= lzxAlignedBits {
		off += br.bits(extra-lzxAlignedBits) << lzxAlignedBits
		br.ensure(lzxAlignedMax)
		off += uint32(d.align.decode(br))
	} else {
		off += br.bits(extra)
	}
	off -= 2
	d.recent[2], d.recent[1], d.recent[0] = d.recent[1], d.recent[0], off
	return off
}

// lzxUndoE8 turns the absolute targets the compressor wrote after E8
// bytes back into relative ones. E8 bytes in the last 10 bytes are never
// translated.
func lzxUndoE8(b []byte) {
	for i := 0; i+10 < len(b); i++ {
		if b[i] != 0xe8 {
			continue
		}
		abs := int32(binary.LittleEndian.Uint32(b[i+1:]))
		pos := int32(i)
		switch {
		case abs >= 0 && abs < lzxE8FileSize:
			binary.LittleEndian.PutUint32(b[i+1:], uint32(abs-pos))
		case abs < 0 && abs >= -pos:
			binary.LittleEndian.PutUint32(b[i+1:], uint32(abs+lzxE8FileSize))
		}
		i += 4
	}
}
