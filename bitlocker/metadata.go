// Package bitlocker opens BitLocker (FVE) volumes: it parses the volume
// header and the FVE metadata, unwraps the volume master key (VMK) and the
// full volume encryption key (FVEK) with a recovery password, a user
// password, a startup/recovery key file or a clear key, and serves the
// decrypted volume as a volume.Device, encrypting writes as Windows does.
//
// The layout follows what Windows writes (and what dislocker and libbde
// document): a boot sector with "-FVE-FS-" at offset 3, three copies of the
// metadata block, the original first sectors of the volume relocated
// elsewhere (Windows 7 and later), and sector encryption with AES-CBC
// (optionally with the Elephant diffuser) or AES-XTS.
package bitlocker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Signature is what a BitLocker boot sector and metadata block carry at
// offset 3 and 0.
const Signature = "-FVE-FS-"

// ErrNotBitLocker means the device does not start with a BitLocker header.
var ErrNotBitLocker = errors.New("not a BitLocker volume")

// metadataRegion is the size Windows 7 and later reserve for each
// metadata block; reads there show zeros, as through Windows' fvevol
// driver. Vista reserves 16 KiB rounded to whole clusters.
const metadataRegion = 64 * 1024

// regionSize is the reserved size of one metadata block.
func (h Header) regionSize() int64 {
	if !h.Vista {
		return metadataRegion
	}
	c := int64(h.SectorSize) * int64(h.ClusterSectors)
	return (c + 0x3fff) &^ (c - 1)
}

// Entry types and value types of the metadata's datums.
const (
	entryProperty    = 0x0000
	entryVMK         = 0x0002
	entryFVEK        = 0x0003
	entryStartupKey  = 0x0006
	entryDescription = 0x0007
	entryVolumeHdr   = 0x000f

	valueErased    = 0x0000
	valueKey       = 0x0001
	valueUnicode   = 0x0002
	valueStretch   = 0x0003
	valueUseKey    = 0x0004
	valueAESCCM    = 0x0005
	valueTPM       = 0x0006
	valueValidate  = 0x0007
	valueVMK       = 0x0008
	valueExternal  = 0x0009
	valueUpdate    = 0x000a
	valueError     = 0x000b
	valueOffsetLen = 0x000f
)

// Protection types of a VMK.
const (
	ProtClearKey = 0x0000
	ProtTPM      = 0x0100
	ProtStartup  = 0x0200
	ProtTPMPIN   = 0x0500
	ProtRecovery = 0x0800
	ProtPassword = 0x2000
)

// Encryption states of the volume (the metadata header's current state).
const (
	StateDecrypted = 1
	StateSwitching = 2
	StateEOW       = 3
	StateEncrypted = 4
	StatePaused    = 5
)

// Header is what the volume's first sector says.
type Header struct {
	SectorSize     int
	ClusterSectors int
	// MetadataOffsets are the byte offsets of the three metadata blocks
	// (only the first is known from a Vista header).
	MetadataOffsets []uint64
	Vista           bool
	// EOW marks a volume whose header says it encrypts on write.
	EOW bool
}

// ParseHeader reads the BitLocker boot sector.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 512 || string(b[3:11]) != Signature {
		return Header{}, ErrNotBitLocker
	}
	h := Header{SectorSize: int(binary.LittleEndian.Uint16(b[11:])), ClusterSectors: int(b[13])}
	if h.SectorSize != 512 && h.SectorSize != 1024 && h.SectorSize != 2048 && h.SectorSize != 4096 {
		return h, fmt.Errorf("bitlocker header: sector size %d", h.SectorSize)
	}
	if h.ClusterSectors == 0 || h.ClusterSectors&(h.ClusterSectors-1) != 0 {
		return h, fmt.Errorf("bitlocker header: %d sectors per cluster", h.ClusterSectors)
	}
	guid := b[0xa0:0xb0]
	win7 := bytes.Equal(guid, []byte{0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01})
	// a volume encrypting on write (used space only, still converting)
	// carries another GUID and the same offsets
	eow := bytes.Equal(guid, []byte{0x3b, 0x4d, 0xa8, 0x92, 0x80, 0xdd, 0x0e, 0x4d, 0x9e, 0x4e, 0xb1, 0xe3, 0x28, 0x4e, 0xae, 0xd8})
	if win7 || eow {
		h.EOW = eow
		for i := 0; i < 3; i++ {
			h.MetadataOffsets = append(h.MetadataOffsets, binary.LittleEndian.Uint64(b[0xb0+8*i:]))
		}
		return h, nil
	}
	// Vista: the metadata's cluster number replaces the MFT mirror's.
	lcn := binary.LittleEndian.Uint64(b[0x38:])
	if lcn == 0 || lcn > 1<<40 {
		return h, fmt.Errorf("bitlocker header: no metadata location")
	}
	h.Vista = true
	h.MetadataOffsets = []uint64{lcn * uint64(h.ClusterSectors) * uint64(h.SectorSize)}
	return h, nil
}

// Datum is one entry of the metadata, with the nested datums of the value
// types that carry them.
type Datum struct {
	Entry, Value uint16
	// Body is the datum after its 8-byte header.
	Body   []byte
	Nested []Datum
}

// valueHeader is the fixed part of each value type's body before its
// nested datums or payload.
var valueHeader = map[uint16]int{
	valueErased: 0, valueKey: 4, valueUnicode: 0, valueStretch: 20, valueUseKey: 4,
	valueAESCCM: 28, valueTPM: 4, valueValidate: 0, valueVMK: 28, valueExternal: 24,
	valueUpdate: 0, valueError: 0, valueOffsetLen: 16,
}

// nests says which value types hold datums after their fixed part.
var nests = map[uint16]bool{valueStretch: true, valueUseKey: true, valueVMK: true, valueExternal: true}

// parseDatums reads a run of datums; depth bounds nesting on hostile input.
func parseDatums(b []byte, depth int) ([]Datum, error) {
	if depth > 8 {
		return nil, errors.New("datums nested too deep")
	}
	var out []Datum
	for len(b) >= 8 {
		size := int(binary.LittleEndian.Uint16(b))
		if size == 0 && allZero(b) {
			break // padding at the end of the block
		}
		if size < 8 || size > len(b) {
			return out, fmt.Errorf("datum of %d bytes in %d left", size, len(b))
		}
		d := Datum{Entry: binary.LittleEndian.Uint16(b[2:]), Value: binary.LittleEndian.Uint16(b[4:]), Body: b[8:size]}
		if fixed, ok := valueHeader[d.Value]; ok && len(d.Body) < fixed {
			return out, fmt.Errorf("datum value type %d: %d bytes, need %d", d.Value, len(d.Body), fixed)
		}
		if nests[d.Value] {
			n, err := parseDatums(d.Body[valueHeader[d.Value]:], depth+1)
			if err != nil {
				return out, fmt.Errorf("in datum value type %d: %w", d.Value, err)
			}
			d.Nested = n
		}
		out = append(out, d)
		b = b[size:]
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// nested returns the first nested datum of value type v.
func (d Datum) nested(v uint16) (Datum, bool) {
	for _, n := range d.Nested {
		if n.Value == v {
			return n, true
		}
	}
	return Datum{}, false
}

// keyBytes is the key of a value-type-1 datum, and its algorithm.
func (d Datum) keyBytes() (uint16, []byte) {
	return binary.LittleEndian.Uint16(d.Body), d.Body[4:]
}

// VMK is one protector of the volume master key.
type VMK struct {
	GUID       string
	Protection uint16
	Datum      Datum
}

// Metadata is one FVE metadata block.
type Metadata struct {
	Version int
	// Size is the length of the block that its checksum covers.
	Size         int
	CurrentState uint16
	NextState    uint16
	// EncryptedSize is how far from the start the volume is encrypted
	// (the whole volume unless a conversion is under way).
	EncryptedSize uint64
	// ConvertSize, in a conversion, is the size of the region after
	// EncryptedSize that Windows virtualises (v2).
	ConvertSize uint32
	// HeaderSectors is how many sectors of the volume's start were
	// relocated to HeaderOffset (v2); for Vista HeaderOffset is the MFT
	// mirror's cluster number that the boot sector lost.
	HeaderSectors uint32
	Offsets       [3]uint64
	HeaderOffset  uint64
	// HeaderBytes is the length of the relocated start, from the
	// metadata's virtualization entry (0 when it has none).
	HeaderBytes uint64

	VolumeGUID  string
	Algorithm   uint16
	Description string
	VMKs        []VMK
	FVEK        *Datum // the AES-CCM datum that wraps the FVEK
	Entries     []Datum
}

// ParseMetadata reads a metadata block (its 64-byte header, the dataset
// header and the datums).
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b) < 0x70 || string(b[:8]) != Signature {
		return nil, errors.New("metadata block: no -FVE-FS- signature")
	}
	le := binary.LittleEndian
	m := &Metadata{
		Version: int(le.Uint16(b[0x0a:])), CurrentState: le.Uint16(b[0x0c:]), NextState: le.Uint16(b[0x0e:]),
		EncryptedSize: le.Uint64(b[0x10:]), ConvertSize: le.Uint32(b[0x18:]), HeaderSectors: le.Uint32(b[0x1c:]),
		HeaderOffset: le.Uint64(b[0x38:]),
	}
	for i := range m.Offsets {
		m.Offsets[i] = le.Uint64(b[0x20+8*i:])
	}
	if m.Version != 1 && m.Version != 2 {
		return nil, fmt.Errorf("metadata block: version %d", m.Version)
	}
	m.Size = int(le.Uint16(b[8:]))
	if m.Version == 2 {
		m.Size <<= 4
	}
	ds := b[0x40:]
	size, hdr := int(le.Uint32(ds)), int(le.Uint32(ds[8:]))
	if hdr != 0x30 || size < hdr || size > len(ds) {
		return nil, fmt.Errorf("metadata block: dataset of %d bytes (header %d) in %d", size, hdr, len(ds))
	}
	m.VolumeGUID = formatGUID(ds[0x10:0x20])
	m.Algorithm = le.Uint16(ds[0x24:])
	entries, err := parseDatums(ds[hdr:size], 0)
	if err != nil {
		return nil, fmt.Errorf("metadata block: %w", err)
	}
	m.Entries = entries
	for i := range entries {
		d := entries[i]
		switch {
		case d.Entry == entryVMK && d.Value == valueVMK:
			m.VMKs = append(m.VMKs, VMK{GUID: formatGUID(d.Body[:16]), Protection: le.Uint16(d.Body[26:]), Datum: d})
		case d.Entry == entryFVEK && d.Value == valueAESCCM && m.FVEK == nil:
			m.FVEK = &entries[i]
		case d.Entry == entryDescription && d.Value == valueUnicode:
			m.Description = utf16String(d.Body)
		case d.Entry == entryVolumeHdr && d.Value == valueOffsetLen:
			m.HeaderBytes = le.Uint64(d.Body[8:])
		}
	}
	return m, nil
}

// Protectors names the kinds of protector the volume has, as info.json
// shows them.
func (m *Metadata) Protectors() []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range m.VMKs {
		n := ProtectorName(v.Protection)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// ProtectorName is a protection type in words.
func ProtectorName(p uint16) string {
	switch p {
	case ProtClearKey:
		return "clear key"
	case ProtTPM:
		return "tpm"
	case ProtStartup:
		return "startup key"
	case ProtTPMPIN:
		return "tpm and pin"
	case ProtRecovery:
		return "recovery password"
	case ProtPassword:
		return "password"
	}
	return fmt.Sprintf("protector 0x%04x", p)
}

// formatGUID writes a Windows GUID (first three fields little-endian).
func formatGUID(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.LittleEndian.Uint16(b[i:]))
	}
	return strings.TrimRight(string(utf16.Decode(u)), "\x00")
}

// ReadMetadata reads the header and the first metadata block that parses,
// naming every block that did not.
func ReadMetadata(r io.ReaderAt) (Header, *Metadata, error) {
	sec := make([]byte, 512)
	if _, err := r.ReadAt(sec, 0); err != nil {
		return Header{}, nil, fmt.Errorf("reading the boot sector: %w", err)
	}
	h, err := ParseHeader(sec)
	if err != nil {
		return h, nil, err
	}
	var errs []error
	for i, off := range h.MetadataOffsets {
		if off == 0 || off > 1<<56 {
			errs = append(errs, fmt.Errorf("metadata block %d: offset %d out of range", i+1, off))
			continue
		}
		buf := make([]byte, metadataRegion)
		n, err := r.ReadAt(buf, int64(off))
		if n < 0x70 {
			errs = append(errs, fmt.Errorf("metadata block %d at %d: %w", i+1, off, err))
			continue
		}
		m, err := ParseMetadata(buf[:n])
		if err == nil {
			err = checkCRC(buf[:n], m.Size)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata block %d at %d: %w", i+1, off, err))
			continue
		}
		if h.Vista {
			h.MetadataOffsets = m.Offsets[:]
		}
		return h, m, nil
	}
	return h, nil, fmt.Errorf("bitlocker: no usable metadata block: %w", errors.Join(errs...))
}

// checkCRC compares the block's CRC-32 with the one its validation
// record (right after the block) holds: a torn or damaged copy is skipped
// for the next one, as Windows does.
func checkCRC(b []byte, size int) error {
	if size < 0x70 || size+8 > len(b) {
		return fmt.Errorf("metadata size %d out of range", size)
	}
	want := binary.LittleEndian.Uint32(b[size+4:])
	if got := crc32.ChecksumIEEE(b[:size]); got != want {
		return fmt.Errorf("checksum %08x, the block says %08x: damaged", got, want)
	}
	return nil
}
