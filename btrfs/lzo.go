package btrfs

import (
	"errors"
	"fmt"
)

var errLZO = errors.New("bad LZO stream")

// lzoExtent expands btrfs's LZO framing: a 32-bit total length, then
// segments of a 32-bit length and an LZO1X stream each (one sector of
// data each); a segment header never straddles a sector boundary.
func lzoExtent(b []byte, ram uint64, sector uint32) ([]byte, error) {
	if len(b) < 4 {
		return nil, errLZO
	}
	total := int(le.Uint32(b))
	if total > len(b) || total < 4 {
		return nil, fmt.Errorf("lzo total %d of %d: %w", total, len(b), errLZO)
	}
	out := make([]byte, 0, ram)
	ss := int(sector)
	for p := 4; p < total && uint64(len(out)) < ram; {
		if rem := ss - p%ss; rem < 4 {
			p += rem
			continue
		}
		if p+4 > total {
			break
		}
		n := int(le.Uint32(b[p:]))
		p += 4
		if n > total-p {
			return nil, fmt.Errorf("lzo segment of %d bytes: %w", n, errLZO)
		}
		var err error
		if out, err = lzo1x(b[p:p+n], out, len(out)+ss); err != nil {
			return nil, err
		}
		p += n
	}
	return out, nil
}

// lzo1x decompresses one LZO1X stream, appending to out, which may not
// grow past limit. It follows the Linux kernel's
// lzo1x_decompress_safe: every read and copy is bounds-checked.
func lzo1x(in, out []byte, limit int) ([]byte, error) {
	ip := 0
	state := 0
	need := func(n int) bool { return ip+n <= len(in) }
	lit := func(t int) bool {
		if !need(t) || len(out)+t > limit {
			return false
		}
		out = append(out, in[ip:ip+t]...)
		ip += t
		return true
	}
	match := func(dist, t int) bool {
		m := len(out) - dist
		if m < 0 || len(out)+t > limit {
			return false
		}
		for i := 0; i < t; i++ {
			out = append(out, out[m+i])
		}
		return true
	}
	zeros := func() (int, bool) { // the 255-run length extension
		n := 0
		for need(1) && in[ip] == 0 {
			ip++
			if n++; n > 1<<20 {
				return 0, false
			}
		}
		if !need(1) {
			return 0, false
		}
		v := n*255 + int(in[ip])
		ip++
		return v, true
	}
	if !need(1) {
		return nil, errLZO
	}
	next := 0
	if in[0] > 17 {
		t := int(in[0]) - 17
		ip++
		if !lit(t) {
			return nil, errLZO
		}
		state = 4
		if t < 4 {
			state = t
		}
	}
	for {
		if !need(1) {
			return nil, errLZO
		}
		t := int(in[ip])
		ip++
		var dist int
		switch {
		case t < 16 && state == 0:
			if t == 0 {
				v, ok := zeros()
				if !ok {
					return nil, errLZO
				}
				t = v + 15
			}
			if !lit(t + 3) {
				return nil, errLZO
			}
			state = 4
			continue
		case t < 16 && state != 4:
			if !need(1) {
				return nil, errLZO
			}
			next = t & 3
			dist = 1 + t>>2 + int(in[ip])<<2
			ip++
			t = 2
		case t < 16:
			if !need(1) {
				return nil, errLZO
			}
			next = t & 3
			dist = 1 + 0x800 + t>>2 + int(in[ip])<<2
			ip++
			t = 3
		case t >= 64:
			if !need(1) {
				return nil, errLZO
			}
			next = t & 3
			dist = 1 + (t>>2)&7 + int(in[ip])<<3
			ip++
			t = t>>5 + 1
		case t >= 32:
			t &= 31
			if t == 0 {
				v, ok := zeros()
				if !ok {
					return nil, errLZO
				}
				t = v + 31
			}
			t += 2
			if !need(2) {
				return nil, errLZO
			}
			n := int(le.Uint16(in[ip:]))
			ip += 2
			dist, next = 1+n>>2, n&3
		default: // 16..31
			hi := (t & 8) << 11
			t &= 7
			if t == 0 {
				v, ok := zeros()
				if !ok {
					return nil, errLZO
				}
				t = v + 7
			}
			t += 2
			if !need(2) {
				return nil, errLZO
			}
			n := int(le.Uint16(in[ip:]))
			ip += 2
			dist, next = hi+n>>2, n&3
			if dist == 0 {
				return out, nil // end of stream
			}
			dist += 0x4000
		}
		if !match(dist, t) || !lit(next) {
			return nil, errLZO
		}
		state = next
	}
}
