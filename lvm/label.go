// Package lvm reads LVM2 physical volumes (the LABELONE label and the text
// metadata in their metadata areas), assembles their volume groups and
// maps linear and striped logical volumes onto the physical volumes'
// extents as a volume.Device. Metadata is only ever read: offvm never
// rewrites it, so a guest's LVM sees exactly the layout it wrote.
//
// The formats follow LVM2's lib/format_text (label.c, layout.h,
// format-text.c, import_vsn1.c).
package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

const (
	sectorSize     = 512
	labelScanSecs  = 4 // the label is in one of the first four sectors
	mdaHeaderSize  = 512
	mdaMagic       = " LVM2 x[5A%r0N*>"
	maxMetadataLen = 4 << 20 // bigger than any real VG's text (and a fuzz guard)
)

// ErrNotPV means the device carries no LVM2 label.
var ErrNotPV = errors.New("no LVM2 label")

// ErrCorrupt wraps every structural problem of a label or metadata area.
var ErrCorrupt = errors.New("corrupt LVM2 metadata")

// Label is what a physical volume's label says.
type Label struct {
	UUID    string // with LVM's dashes, as the metadata text names it
	DevSize int64  // bytes, as pvcreate saw the device
	// Metadata is the newest text copy among the PV's metadata areas
	// (nil when the PV has none, as pvcreate --metadatacopies 0 makes).
	Metadata []byte
}

// Probe says whether dev starts with an LVM2 label.
func Probe(dev io.ReaderAt) bool {
	_, _, err := findLabel(dev)
	return err == nil
}

// findLabel returns the label sector and its offset.
func findLabel(dev io.ReaderAt) ([]byte, int64, error) {
	buf := make([]byte, labelScanSecs*sectorSize)
	n, _ := dev.ReadAt(buf, 0)
	for s := 0; (s+1)*sectorSize <= n; s++ {
		b := buf[s*sectorSize : (s+1)*sectorSize]
		if string(b[0:8]) == "LABELONE" && string(b[24:32]) == "LVM2 001" &&
			binary.LittleEndian.Uint64(b[8:]) == uint64(s) {
			if crcLVM(b[20:]) != binary.LittleEndian.Uint32(b[16:]) {
				return nil, 0, fmt.Errorf("label in sector %d: bad checksum: %w", s, ErrCorrupt)
			}
			return b, int64(s) * sectorSize, nil
		}
	}
	return nil, 0, ErrNotPV
}

// ReadLabel reads the label and the newest metadata text of the PV on dev.
func ReadLabel(dev io.ReaderAt) (*Label, error) {
	b, _, err := findLabel(dev)
	if err != nil {
		return nil, err
	}
	off := binary.LittleEndian.Uint32(b[20:])
	if off < 32 || off+40 > sectorSize {
		return nil, fmt.Errorf("label: pv header at %d: %w", off, ErrCorrupt)
	}
	h := b[off:]
	l := &Label{UUID: dashUUID(string(h[:32])), DevSize: int64(binary.LittleEndian.Uint64(h[32:]))}
	// Two lists of (offset, size) follow, each ended by a zero entry:
	// data areas, then metadata areas.
	p := 40
	next := func() (uint64, uint64, bool) {
		if int(off)+p+16 > sectorSize {
			return 0, 0, false
		}
		o, s := binary.LittleEndian.Uint64(h[p:]), binary.LittleEndian.Uint64(h[p+8:])
		p += 16
		return o, s, o != 0 || s != 0
	}
	for {
		if _, _, ok := next(); !ok {
			break
		}
	}
	var best []byte
	bestSeq := int64(-1)
	for {
		o, s, ok := next()
		if !ok {
			break
		}
		text, err := readMDA(dev, int64(o), int64(s))
		if err != nil {
			return nil, fmt.Errorf("metadata area at %d: %w", o, err)
		}
		if seq := seqnoOf(text); text != nil && seq > bestSeq {
			best, bestSeq = text, seq
		}
	}
	l.Metadata = best
	return l, nil
}

// readMDA reads the current metadata text of one metadata area: a ring
// buffer after a 512-byte header whose first raw_locn points at the text.
func readMDA(dev io.ReaderAt, off, size int64) ([]byte, error) {
	if off < 0 || size < mdaHeaderSize || off > 1<<50 || size > 1<<40 {
		return nil, fmt.Errorf("area %d+%d: %w", off, size, ErrCorrupt)
	}
	h := make([]byte, mdaHeaderSize)
	if _, err := dev.ReadAt(h, off); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	if string(h[4:20]) != mdaMagic {
		return nil, fmt.Errorf("header magic: %w", ErrCorrupt)
	}
	if crcLVM(h[4:]) != binary.LittleEndian.Uint32(h) {
		return nil, fmt.Errorf("header checksum: %w", ErrCorrupt)
	}
	rl := h[40:]
	tOff, tLen := int64(binary.LittleEndian.Uint64(rl)), int64(binary.LittleEndian.Uint64(rl[8:]))
	sum := binary.LittleEndian.Uint32(rl[16:])
	if tOff == 0 && tLen == 0 {
		return nil, nil
	}
	if tLen <= 0 || tLen > maxMetadataLen || tLen > size-mdaHeaderSize || tOff < mdaHeaderSize || tOff >= size {
		return nil, fmt.Errorf("text at %d+%d in area of %d: %w", tOff, tLen, size, ErrCorrupt)
	}
	text := make([]byte, tLen)
	first := min(tLen, size-tOff)
	if _, err := dev.ReadAt(text[:first], off+tOff); err != nil {
		return nil, fmt.Errorf("reading text: %w", err)
	}
	if first < tLen { // wrapped round the ring to just after the header
		if _, err := dev.ReadAt(text[first:], off+mdaHeaderSize); err != nil {
			return nil, fmt.Errorf("reading text: %w", err)
		}
	}
	if crcLVM(text) != sum {
		return nil, fmt.Errorf("text checksum: %w", ErrCorrupt)
	}
	return bytes.TrimRight(text, "\x00"), nil
}

// seqnoOf finds "seqno = N" in a metadata text without a full parse, so
// that only the newest copy is parsed.
func seqnoOf(text []byte) int64 {
	i := bytes.Index(text, []byte("seqno"))
	if i < 0 {
		return -1
	}
	var n int64 = -1
	for _, c := range text[i+5:] {
		switch {
		case c == ' ' || c == '\t' || c == '=':
			if n >= 0 {
				return n
			}
		case c >= '0' && c <= '9':
			if n < 0 {
				n = 0
			}
			n = n*10 + int64(c-'0')
		default:
			return n
		}
	}
	return n
}

// crcLVM is LVM2's calc_crc: CRC-32 (reflected 0xEDB88320) seeded with
// 0xf597a6cf and without the final inversion.
func crcLVM(b []byte) uint32 {
	// crc32.Update inverts before and after; undo both.
	return ^crc32.Update(^uint32(0xf597a6cf), crc32.IEEETable, b)
}

// dashUUID formats a 32-character LVM UUID as 6-4-4-4-4-4-6.
func dashUUID(s string) string {
	if len(s) != 32 {
		return s
	}
	var b strings.Builder
	for i, n := range []int{6, 4, 4, 4, 4, 4, 6} {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[:n])
		s = s[n:]
	}
	return b.String()
}
