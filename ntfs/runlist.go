package ntfs

import (
	"fmt"
	"syscall"
)

// run maps length clusters starting at vcn to lcn; lcn < 0 is a hole.
type run struct {
	vcn, lcn, length int64
}

const holeLCN = -1

// decodeRuns parses a mapping-pairs array starting at startVCN. maxLCN
// bounds real clusters (0: unchecked).
func decodeRuns(b []byte, startVCN, maxLCN int64) ([]run, error) {
	var runs []run
	vcn, lcn := startVCN, int64(0)
	for i := 0; i < len(b); {
		h := b[i]
		if h == 0 {
			return runs, nil
		}
		ls, os := int(h&0x0f), int(h>>4)
		if ls == 0 || ls > 8 || os > 8 || i+1+ls+os > len(b) {
			return nil, fmt.Errorf("ntfs: runlist: bad header %#x at %d: %w", h, i, syscall.EIO)
		}
		length := leSigned(b[i+1:i+1+ls], true)
		if length <= 0 || length > 1<<48 {
			return nil, fmt.Errorf("ntfs: runlist: bad run length %d: %w", length, syscall.EIO)
		}
		r := run{vcn: vcn, lcn: holeLCN, length: length}
		if os > 0 {
			lcn += leSigned(b[i+1+ls:i+1+ls+os], true)
			if lcn < 0 || (maxLCN > 0 && lcn+length > maxLCN) {
				return nil, fmt.Errorf("ntfs: runlist: run at cluster %d+%d outside the volume: %w", lcn, length, syscall.EIO)
			}
			r.lcn = lcn
		}
		runs = append(runs, r)
		vcn += length
		i += 1 + ls + os
	}
	return nil, fmt.Errorf("ntfs: runlist: no terminator: %w", syscall.EIO)
}

func leSigned(b []byte, signed bool) int64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if signed && len(b) > 0 && len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		v |= ^uint64(0) << (8 * uint(len(b)))
	}
	return int64(v)
}

// encodeRuns writes the mapping pairs for runs (terminator included).
func encodeRuns(runs []run) []byte {
	var out []byte
	prev := int64(0)
	for _, r := range runs {
		lb := intBytes(r.length, true) // readers take lengths as signed too
		var ob []byte
		if r.lcn >= 0 {
			ob = intBytes(r.lcn-prev, true)
			prev = r.lcn
		}
		out = append(out, byte(len(ob)<<4|len(lb)))
		out = append(out, lb...)
		out = append(out, ob...)
	}
	return append(out, 0)
}

// intBytes is the shortest little-endian encoding of v.
func intBytes(v int64, signed bool) []byte {
	var b []byte
	for {
		b = append(b, byte(v))
		v >>= 8
		last := b[len(b)-1]
		if signed {
			if (v == 0 && last&0x80 == 0) || (v == -1 && last&0x80 != 0) {
				return b
			}
		} else if v == 0 {
			return b
		}
	}
}

// mergeRuns joins adjacent runs that continue each other.
func mergeRuns(runs []run) []run {
	var out []run
	for _, r := range runs {
		if r.length == 0 {
			continue
		}
		if n := len(out); n > 0 {
			p := &out[n-1]
			if p.vcn+p.length == r.vcn && ((p.lcn < 0 && r.lcn < 0) || (p.lcn >= 0 && p.lcn+p.length == r.lcn)) {
				p.length += r.length
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
