package hive

import (
	"encoding/binary"
	"fmt"
)

// readList returns the key cell offsets of a subkey list (li, lf, lh, or an
// ri of those). want is the count the key claims; a list that disagrees is
// corrupt, since Windows keeps the two in step.
func (h *Hive) readList(off uint32, want uint32) ([]uint32, error) {
	offs, _, err := h.readHashedList(off, want)
	return offs, err
}

// readHashedList is readList with the lh name hash of each key beside its
// offset; the hashes are nil unless every leaf of the list is an lh.
func (h *Hive) readHashedList(off uint32, want uint32) ([]uint32, []uint32, error) {
	if uint64(want)*8 > uint64(h.limit) {
		return nil, nil, fmt.Errorf("key claims %d subkeys, more than the hive can hold: %w", want, ErrCorrupt)
	}
	l := leaves{offs: make([]uint32, 0, want), hashes: make([]uint32, 0, want), want: want, hashed: true}
	c, sig, err := h.sigCell(off, "li", "lf", "lh", "ri")
	if err != nil {
		return nil, nil, err
	}
	if sig == "ri" {
		subs, err := listEntries(c, 4, 0, off)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range subs {
			lc, _, err := h.sigCell(s, "li", "lf", "lh")
			if err != nil {
				return nil, nil, fmt.Errorf("index root at 0x%x: %w", off, err)
			}
			if err := l.add(lc, s); err != nil {
				return nil, nil, err
			}
		}
	} else if err := l.add(c, off); err != nil {
		return nil, nil, err
	}
	if uint32(len(l.offs)) != want {
		return nil, nil, fmt.Errorf("subkey list at 0x%x holds %d keys, the key says %d: %w", off, len(l.offs), want, ErrCorrupt)
	}
	if !l.hashed {
		return l.offs, nil, nil
	}
	return l.offs, l.hashes, nil
}

// leaves gathers the entries of a list's leaf cells, at most want.
type leaves struct {
	offs, hashes []uint32
	want         uint32
	hashed       bool // every leaf so far is an lh
}

func (l *leaves) add(c []byte, off uint32) error {
	stride := 8
	if string(c[:2]) == "li" {
		stride = 4
	}
	e, err := listEntries(c, stride, 0, off)
	if err != nil {
		return err
	}
	if uint64(len(l.offs))+uint64(len(e)) > uint64(l.want) {
		return fmt.Errorf("subkey list at 0x%x holds more keys than the key's count %d: %w", off, l.want, ErrCorrupt)
	}
	l.offs = append(l.offs, e...)
	if l.hashed = l.hashed && string(c[:2]) == "lh"; l.hashed {
		hs, _ := listEntries(c, 8, 4, off) // the same cell, checked above
		l.hashes = append(l.hashes, hs...)
	}
	return nil
}

// listEntries reads the 4 bytes at skip in each element of a list cell.
func listEntries(c []byte, stride, skip int, off uint32) ([]uint32, error) {
	if len(c) < 4 {
		return nil, fmt.Errorf("list cell at 0x%x too short: %w", off, ErrCorrupt)
	}
	n := int(binary.LittleEndian.Uint16(c[2:]))
	if 4+n*stride > len(c) {
		return nil, fmt.Errorf("list %q at 0x%x claims %d entries, more than its %d-byte cell: %w", c[:2], off, n, len(c), ErrCorrupt)
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(c[4+i*stride+skip:])
	}
	return out, nil
}
