package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"
)

// Attribute types.
const (
	atStandardInfo = 0x10
	atAttrList     = 0x20
	atFileName     = 0x30
	atObjectID     = 0x40
	atSecurityDesc = 0x50
	atVolumeName   = 0x60
	atVolumeInfo   = 0x70
	atData         = 0x80
	atIndexRoot    = 0x90
	atIndexAlloc   = 0xa0
	atBitmap       = 0xb0
	atReparse      = 0xc0
	atEAInfo       = 0xd0
	atEA           = 0xe0
)

// Attribute header flags.
const (
	afCompressed = 0x0001
	afEncrypted  = 0x4000
	afSparse     = 0x8000
)

// attr is one attribute header (one extent of a non-resident attribute).
type attr struct {
	typ      uint32
	name     string
	id       uint16
	flags    uint16
	rec      uint64 // record holding the header
	off      int    // header offset within that record
	length   int
	resident bool
	value    []byte // resident value (aliases the record buffer)

	startVCN, lastVCN                       int64
	runs                                    []run
	allocSize, dataSize, initSize, compSize int64
	compUnit                                int // clusters per compression unit; 0: none
	runsOff                                 int
}

// parseAttrs decodes every attribute header in a record.
func parseAttrs(r *record, maxLCN int64) ([]attr, error) {
	out := make([]attr, 0, countAttrs(r))
	for off := r.attrOff; ; {
		if off+4 > r.used {
			return nil, fmt.Errorf("ntfs: MFT record %d: attributes run past the used size: %w", r.num, syscall.EIO)
		}
		typ := binary.LittleEndian.Uint32(r.buf[off:])
		if typ == attrEndMark {
			return out, nil
		}
		a, err := parseAttr(r.buf[off:r.used], maxLCN)
		if err != nil {
			return nil, fmt.Errorf("ntfs: MFT record %d, attribute at %d: %w", r.num, off, err)
		}
		a.rec, a.off = r.num, off
		out = append(out, a)
		off += a.length
		if len(out) > 4096 {
			return nil, fmt.Errorf("ntfs: MFT record %d: too many attributes: %w", r.num, syscall.EIO)
		}
	}
}

// countAttrs counts the attribute headers as far as their lengths say:
// parseAttrs's capacity (it checks them itself). A big directory's
// records are parsed for every operation in it, and the slice grown one
// attribute at a time was most of what that allocated.
func countAttrs(r *record) int {
	n := 0
	for off := r.attrOff; off+8 <= r.used && n < 64; n++ {
		l := int(binary.LittleEndian.Uint32(r.buf[off+4:]))
		if binary.LittleEndian.Uint32(r.buf[off:]) == attrEndMark || l < 0x18 {
			break
		}
		off += l
	}
	return n
}

// parseAttr decodes one attribute header at the start of b.
func parseAttr(b []byte, maxLCN int64) (attr, error) {
	var a attr
	if len(b) < 0x18 {
		return a, fmt.Errorf("truncated header: %w", syscall.EIO)
	}
	a.typ = binary.LittleEndian.Uint32(b)
	a.length = int(binary.LittleEndian.Uint32(b[4:]))
	if a.length < 0x18 || a.length > len(b) || a.length%8 != 0 {
		return a, fmt.Errorf("bad length %d: %w", a.length, syscall.EIO)
	}
	b = b[:a.length]
	a.resident = b[8] == 0
	nameLen, nameOff := int(b[9]), int(binary.LittleEndian.Uint16(b[10:]))
	a.flags = binary.LittleEndian.Uint16(b[12:])
	a.id = binary.LittleEndian.Uint16(b[14:])
	if nameLen > 0 {
		if nameOff+2*nameLen > len(b) {
			return a, fmt.Errorf("name outside the attribute: %w", syscall.EIO)
		}
		a.name = decodeName(b[nameOff : nameOff+2*nameLen])
	}
	if a.resident {
		vl := int(binary.LittleEndian.Uint32(b[0x10:]))
		vo := int(binary.LittleEndian.Uint16(b[0x14:]))
		if vo > len(b) || vl > len(b)-vo {
			return a, fmt.Errorf("resident value outside the attribute: %w", syscall.EIO)
		}
		a.value = b[vo : vo+vl]
		a.dataSize, a.initSize, a.allocSize = int64(vl), int64(vl), int64(vl)
		return a, nil
	}
	if len(b) < 0x40 {
		return a, fmt.Errorf("truncated non-resident header: %w", syscall.EIO)
	}
	a.startVCN = int64(binary.LittleEndian.Uint64(b[0x10:]))
	a.lastVCN = int64(binary.LittleEndian.Uint64(b[0x18:]))
	a.runsOff = int(binary.LittleEndian.Uint16(b[0x20:]))
	cu := int(binary.LittleEndian.Uint16(b[0x22:]))
	a.allocSize = int64(binary.LittleEndian.Uint64(b[0x28:]))
	a.dataSize = int64(binary.LittleEndian.Uint64(b[0x30:]))
	a.initSize = int64(binary.LittleEndian.Uint64(b[0x38:]))
	if a.startVCN < 0 || a.lastVCN < a.startVCN-1 || a.dataSize < 0 || a.allocSize < 0 || a.initSize < 0 {
		return a, fmt.Errorf("bad VCN range or sizes: %w", syscall.EIO)
	}
	if cu > 0 && cu <= 8 { // Windows uses 4 (16 clusters); larger units are not NTFS
		a.compUnit = 1 << cu
	} else if cu != 0 {
		return a, fmt.Errorf("bad compression unit %d: %w", cu, syscall.EIO)
	}
	if a.runsOff > len(b) || a.runsOff < 0x40 {
		return a, fmt.Errorf("runlist outside the attribute: %w", syscall.EIO)
	}
	if a.runsOff >= 0x48 {
		a.compSize = int64(binary.LittleEndian.Uint64(b[0x40:]))
	}
	runs, err := decodeRuns(b[a.runsOff:], a.startVCN, maxLCN)
	if err != nil {
		return a, err
	}
	a.runs = runs
	return a, nil
}

// decodeName turns UTF-16LE bytes into a string (unpaired surrogates become U+FFFD).
// decodeName turns a UTF-16LE name into a string as utf16.Decode would
// (an unpaired surrogate becomes U+FFFD), without its two intermediate
// slices: listing a directory of 40,000 names and stating each file
// decodes every name, and Windows' names are mostly ASCII.
func decodeName(b []byte) string {
	n := len(b) / 2
	out := make([]byte, 0, n)
	for i := 0; i < n; i++ {
		c := rune(binary.LittleEndian.Uint16(b[2*i:]))
		switch {
		case c < utf8.RuneSelf:
			out = append(out, byte(c))
		case utf16.IsSurrogate(c) && i+1 < n:
			r := utf16.DecodeRune(c, rune(binary.LittleEndian.Uint16(b[2*i+2:])))
			if r != utf8.RuneError {
				i++ // a pair
			}
			out = utf8.AppendRune(out, r)
		default: // a lone surrogate at the end is written as U+FFFD
			out = utf8.AppendRune(out, c)
		}
	}
	return string(out)
}

func encodeName(s string) []uint16 { return utf16.Encode([]rune(s)) }

func nameBytes(u []uint16) []byte {
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}
