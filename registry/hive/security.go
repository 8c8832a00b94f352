package hive

import (
	"encoding/binary"
	"fmt"
)

// Security is a key security (sk) cell: one self-relative security
// descriptor shared by every key that points at it.
type Security struct {
	desc []byte
}

// Descriptor is the self-relative SECURITY_DESCRIPTOR bytes.
func (s *Security) Descriptor() []byte { return s.desc }

// NewSecurity wraps a self-relative security descriptor for SetSecurity.
func NewSecurity(desc []byte) *Security {
	return &Security{desc: append([]byte(nil), desc...)}
}

// security decodes (once) the sk cell at off; keys pointing at the same
// cell share one *Security, and Serialize writes it once. The caller holds
// h.dec or h.mu exclusively (h.secs is shared by every reader).
func (h *Hive) security(off uint32) (*Security, error) {
	if s, ok := h.secs[off]; ok {
		return s, nil
	}
	c, _, err := h.sigCell(off, "sk")
	if err != nil {
		return nil, err
	}
	if len(c) < 20 {
		return nil, fmt.Errorf("security cell at 0x%x too short: %w", off, ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(c[16:])
	if uint64(n) > uint64(len(c)-20) {
		return nil, fmt.Errorf("security cell at 0x%x: descriptor of %d bytes overruns its cell: %w", off, n, ErrCorrupt)
	}
	s := &Security{desc: append([]byte(nil), c[20:20+n]...)}
	h.secs[off] = s
	return s, nil
}
