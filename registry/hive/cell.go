package hive

import (
	"encoding/binary"
	"fmt"
)

const noCell = 0xFFFFFFFF

// cell returns the data of the allocated cell at off (relative to the hive
// bins data), without its 4-byte size field. Every read of the hive goes
// through here, so every bound is checked here.
func (h *Hive) cell(off uint32) ([]byte, error) {
	if err := h.fill(off, 4); err != nil {
		return nil, fmt.Errorf("cell at 0x%x: %w", off, err)
	}
	if off != noCell && off&7 == 0 && uint64(off)+4 > h.dataLen() && h.dataLen() < uint64(h.bb.binsSize) {
		return nil, fmt.Errorf("cell at 0x%x lies past the end of the file (it holds 0x%x bytes of the 0x%x bytes of hive bins the base block declares): %w",
			off, h.dataLen(), h.bb.binsSize, ErrCorrupt)
	}
	if off == noCell || off&7 != 0 || uint64(off)+4 > uint64(h.limit) {
		return nil, fmt.Errorf("cell offset 0x%x outside the hive bins data (0x%x bytes): %w", off, h.limit, ErrCorrupt)
	}
	size := int32(binary.LittleEndian.Uint32(h.bytesAt(uint64(off), 4)))
	if size >= 0 {
		return nil, fmt.Errorf("cell at 0x%x is free (size %d), yet referenced: %w", off, size, ErrCorrupt)
	}
	n := uint64(-int64(size))
	if n < 8 || uint64(off)+n > uint64(h.limit) {
		return nil, fmt.Errorf("cell at 0x%x claims %d bytes, past the end of the hive bins data: %w", off, n, ErrCorrupt)
	}
	if err := h.fill(off, n); err != nil {
		return nil, fmt.Errorf("cell at 0x%x (%d bytes): %w", off, n, err)
	}
	return h.bytesAt(uint64(off)+4, n-4), nil
}

// sigCell returns a cell that must start with a two-letter signature.
func (h *Hive) sigCell(off uint32, sigs ...string) ([]byte, string, error) {
	c, err := h.cell(off)
	if err != nil {
		return nil, "", err
	}
	if len(c) < 2 {
		return nil, "", fmt.Errorf("cell at 0x%x too short for a signature: %w", off, ErrCorrupt)
	}
	s := string(c[:2])
	for _, want := range sigs {
		if s == want {
			return c, s, nil
		}
	}
	return nil, "", fmt.Errorf("cell at 0x%x has signature %q, want %v: %w", off, c[:2], sigs, ErrCorrupt)
}

// checkBins walks the hbin headers and returns how many bytes of the hive
// bins data they cover correctly. A bad header stops the walk: what lies
// past it is not trusted, and the hive is read only up to it.
func checkBins(data []byte) (uint32, error) {
	var pos uint64
	for pos < uint64(len(data)) {
		if pos+hbinHeaderLen > uint64(len(data)) {
			return uint32(pos), fmt.Errorf("hive bin at 0x%x truncated: %w", pos, ErrCorrupt)
		}
		b := data[pos:]
		if string(b[:4]) != "hbin" {
			return uint32(pos), fmt.Errorf("no hbin signature at hive bins offset 0x%x (found %q): %w", pos, b[:4], ErrCorrupt)
		}
		if off := binary.LittleEndian.Uint32(b[4:]); uint64(off) != pos {
			return uint32(pos), fmt.Errorf("hive bin at 0x%x says it is at 0x%x: %w", pos, off, ErrCorrupt)
		}
		size := uint64(binary.LittleEndian.Uint32(b[8:]))
		if size < 4096 || size%4096 != 0 || pos+size > uint64(len(data)) {
			return uint32(pos), fmt.Errorf("hive bin at 0x%x has bad size 0x%x: %w", pos, size, ErrCorrupt)
		}
		pos += size
	}
	return uint32(pos), nil
}
