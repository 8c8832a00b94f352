package hive

import (
	"encoding/binary"
	"fmt"
)

// readList returns the key cell offsets of a subkey list (li, lf, lh, or an
// ri of those). want is the count the key claims; a list that disagrees is
// corrupt, since Windows keeps the two in step.
func (h *Hive) readList(off uint32, want uint32) ([]uint32, error) {
	if uint64(want)*8 > uint64(h.limit) {
		return nil, fmt.Errorf("key claims %d subkeys, more than the hive can hold: %w", want, ErrCorrupt)
	}
	out := make([]uint32, 0, want)
	c, sig, err := h.sigCell(off, "li", "lf", "lh", "ri")
	if err != nil {
		return nil, err
	}
	if sig == "ri" {
		subs, err := listEntries(c, 4, off)
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			lc, _, err := h.sigCell(s, "li", "lf", "lh")
			if err != nil {
				return nil, fmt.Errorf("index root at 0x%x: %w", off, err)
			}
			out, err = appendLeaf(out, lc, s, want)
			if err != nil {
				return nil, err
			}
		}
	} else if out, err = appendLeaf(out, c, off, want); err != nil {
		return nil, err
	}
	if uint32(len(out)) != want {
		return nil, fmt.Errorf("subkey list at 0x%x holds %d keys, the key says %d: %w", off, len(out), want, ErrCorrupt)
	}
	return out, nil
}

func appendLeaf(out []uint32, c []byte, off uint32, want uint32) ([]uint32, error) {
	stride := 8
	if string(c[:2]) == "li" {
		stride = 4
	}
	e, err := listEntries(c, stride, off)
	if err != nil {
		return nil, err
	}
	if uint64(len(out))+uint64(len(e)) > uint64(want) {
		return nil, fmt.Errorf("subkey list at 0x%x holds more keys than the key's count %d: %w", off, want, ErrCorrupt)
	}
	return append(out, e...), nil
}

// listEntries reads the first 4 bytes of each element of a list cell.
func listEntries(c []byte, stride int, off uint32) ([]uint32, error) {
	if len(c) < 4 {
		return nil, fmt.Errorf("list cell at 0x%x too short: %w", off, ErrCorrupt)
	}
	n := int(binary.LittleEndian.Uint16(c[2:]))
	if 4+n*stride > len(c) {
		return nil, fmt.Errorf("list %q at 0x%x claims %d entries, more than its %d-byte cell: %w", c[:2], off, n, len(c), ErrCorrupt)
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(c[4+i*stride:])
	}
	return out, nil
}
