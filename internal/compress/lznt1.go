package compress

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

const lznt1Chunk = 4096

// LZNT1 expands src into dst (one compression unit) and returns
// the bytes produced. Chunks end at a zero header or the end of src.
func LZNT1(dst, src []byte) (int, error) {
	out := 0
	for len(src) >= 2 {
		h := binary.LittleEndian.Uint16(src)
		if h == 0 {
			break
		}
		size := int(h&0x0fff) + 1
		if 2+size > len(src) {
			return out, fmt.Errorf("LZNT1: chunk of %d bytes past the end of its unit: %w", size, syscall.EIO)
		}
		chunk := src[2 : 2+size]
		src = src[2+size:]
		end := min(out+lznt1Chunk, len(dst))
		if h&0x8000 == 0 {
			if out+size > len(dst) {
				return out, fmt.Errorf("LZNT1: stored chunk overflows the unit: %w", syscall.EIO)
			}
			out += copy(dst[out:], chunk)
			continue
		}
		n, err := lznt1Chunk1(dst[out:end], chunk)
		if err != nil {
			return out, err
		}
		out += n
	}
	return out, nil
}

// lznt1Chunk1 decompresses one chunk into dst (at most 4 KiB).
func lznt1Chunk1(dst, src []byte) (int, error) {
	pos := 0
	for i := 0; i < len(src); {
		flags := src[i]
		i++
		for bit := 0; bit < 8 && i < len(src); bit++ {
			if flags&(1<<bit) == 0 {
				if pos >= len(dst) {
					return pos, fmt.Errorf("LZNT1: chunk overflows: %w", syscall.EIO)
				}
				dst[pos] = src[i]
				pos++
				i++
				continue
			}
			if i+2 > len(src) {
				return pos, fmt.Errorf("LZNT1: truncated back-reference: %w", syscall.EIO)
			}
			tok := int(binary.LittleEndian.Uint16(src[i:]))
			i += 2
			lenBits := 12 // the split between offset and length moves as the chunk fills
			for p := pos - 1; p >= 0x10; p >>= 1 {
				lenBits--
			}
			back := tok>>lenBits + 1
			n := tok&(1<<lenBits-1) + 3
			if back > pos || pos+n > len(dst) {
				return pos, fmt.Errorf("LZNT1: back-reference out of range: %w", syscall.EIO)
			}
			for k := 0; k < n; k++ { // overlapping copies repeat bytes
				dst[pos] = dst[pos-back]
				pos++
			}
		}
	}
	return pos, nil
}
