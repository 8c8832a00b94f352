package compress

// XPRESS Huffman ([MS-XCA] 2.1-2.2) as WOF uses it: each chunk of 4, 8 or
// 16 KiB is one block, so it starts with one table of 512 4-bit code
// lengths and ends when the known output size is reached.

const (
	xpressSymbols  = 512
	xpressMaxLen   = 15
	xpressMinMatch = 3
)

// XpressHuffman decodes in into exactly len(out) bytes.
func XpressHuffman(in, out []byte) error {
	if len(in) < xpressSymbols/2 {
		return errBadChunk
	}
	var lens [xpressSymbols]uint8
	for i, b := range in[:xpressSymbols/2] {
		lens[2*i], lens[2*i+1] = b&0xf, b>>4
	}
	h := new(huffman)
	if err := h.build(lens[:], xpressMaxLen); err != nil {
		return err
	}
	br := &bitReader{in: in[xpressSymbols/2:]}
	for n := 0; n < len(out); {
		br.ensure(xpressMaxLen)
		sym := h.decode(br)
		if sym < 256 {
			out[n] = byte(sym)
			n++
			continue
		}
		length := uint32(sym & 0xf)
		logOff := uint(sym>>4) & 0xf
		// The offset bits come before any length bytes, from one refill.
		br.ensure(16)
		off := uint32(1)<<logOff | br.peek(logOff)
		br.drop(logOff)
		if length == 0xf {
			length += uint32(br.byte())
			if length == 0xf+0xff {
				length = br.u16()
			}
		}
		length += xpressMinMatch
		if int(off) > n || int(length) > len(out)-n {
			return errBadChunk
		}
		n = lzCopy(out, n, int(off), int(length))
	}
	return nil
}

// lzCopy copies a match byte by byte (overlap repeats the pattern) and
// returns the new output position. The caller has bounded off and length.
func lzCopy(out []byte, n, off, length int) int {
	src := n - off
	for i := 0; i < length; i++ {
		out[n+i] = out[src+i]
	}
	return n + length
}
