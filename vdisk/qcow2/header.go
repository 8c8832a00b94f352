package qcow2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/offvm/offvm/vdisk"
)

// magic opens every qcow image: "QFI\xfb".
var magic = []byte{'Q', 'F', 'I', 0xfb}

// rawHeader is the fixed part of the header (version 3 layout; a version 2
// header stops after SnapshotsOffset and the rest reads as zero).
type rawHeader struct {
	Magic                 [4]byte
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64
	CryptMethod           uint32
	L1Size                uint32
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64
	CompatibleFeatures    uint64
	AutoclearFeatures     uint64
	RefcountOrder         uint32
	HeaderLength          uint32
}

// Byte offsets of the header fields this package rewrites.
const (
	offRefcountTable = 48 // refcount_table_offset (8) + refcount_table_clusters (4)
	offAutoclear     = 88
	v2HeaderLen      = 72
	v3MinHeaderLen   = 104
)

// Feature bits.
const (
	incDirty        = 1 << 0
	incCorrupt      = 1 << 1
	incExternalData = 1 << 2
	incCompression  = 1 << 3
	incExtendedL2   = 1 << 4
	incKnown        = incDirty | incCorrupt | incExternalData | incCompression | incExtendedL2

	compatLazyRefcounts = 1 << 0

	autoclearBitmaps = 1 << 0
	autoclearRawData = 1 << 1
)

// Header extension types.
const (
	extEnd          = 0x00000000
	extBackingFmt   = 0xe2792aca
	extFeatureNames = 0x6803f857
	extBitmaps      = 0x23852875
	extEncryption   = 0x0537be77
	extDataFile     = 0x44415441
)

// Compression types (header byte 104).
const (
	compressDeflate = 0
	compressZstd    = 1
)

// header is the validated, decoded header with its extensions.
type header struct {
	rawHeader
	clusterSize   int64
	compression   byte
	backingFile   string
	backingFormat string
	featureNames  map[[2]byte]string // {type, bit} → name
	hasBitmaps    bool
}

// readHeader decodes and validates the header cluster of f, refusing what
// this package cannot present faithfully.
func readHeader(f vdisk.File, fileSize int64) (*header, error) {
	name := f.Name()
	buf := make([]byte, v3MinHeaderLen+8)
	n, _ := f.ReadAt(buf, 0)
	if n < v2HeaderLen {
		return nil, fmt.Errorf("qcow2 %s: file too short for a header (%d bytes): %w", name, n, vdisk.ErrCorrupt)
	}
	clear(buf[n:])
	h := &header{}
	if err := binary.Read(bytes.NewReader(buf), binary.BigEndian, &h.rawHeader); err != nil {
		return nil, fmt.Errorf("qcow2 %s: header: %w", name, err)
	}
	if !bytes.Equal(h.Magic[:], magic) {
		return nil, fmt.Errorf("qcow2 %s: bad magic %q: %w", name, h.Magic[:], vdisk.ErrCorrupt)
	}
	if err := h.checkVersion(name, buf, n); err != nil {
		return nil, err
	}
	if err := h.checkGeometry(name, fileSize); err != nil {
		return nil, err
	}
	if h.CryptMethod != 0 {
		return nil, fmt.Errorf("qcow2 %s: encrypted image (crypt_method %d): %w", name, h.CryptMethod, vdisk.ErrUnsupported)
	}
	if err := h.readExtensions(f, fileSize); err != nil {
		return nil, err
	}
	if err := h.checkFeatures(name); err != nil {
		return nil, err
	}
	return h, h.readBackingName(f, fileSize)
}

// checkVersion normalises the version-dependent fields.
func (h *header) checkVersion(name string, buf []byte, n int) error {
	switch h.Version {
	case 2:
		// Version 2 has none of the v3 fields: whatever follows byte 72 is
		// extensions, not features.
		h.IncompatibleFeatures, h.CompatibleFeatures, h.AutoclearFeatures = 0, 0, 0
		h.RefcountOrder, h.HeaderLength = 4, v2HeaderLen
	case 3:
		if n < v3MinHeaderLen {
			return fmt.Errorf("qcow2 %s: v3 header truncated: %w", name, vdisk.ErrCorrupt)
		}
		if h.HeaderLength < v3MinHeaderLen || h.HeaderLength%8 != 0 {
			return fmt.Errorf("qcow2 %s: bad header_length %d: %w", name, h.HeaderLength, vdisk.ErrCorrupt)
		}
		if h.HeaderLength > v3MinHeaderLen && n > v3MinHeaderLen {
			h.compression = buf[104]
		}
	default:
		return fmt.Errorf("qcow2 %s: version %d: %w", name, h.Version, vdisk.ErrUnsupported)
	}
	if h.RefcountOrder > 6 {
		return fmt.Errorf("qcow2 %s: refcount_order %d exceeds 6: %w", name, h.RefcountOrder, vdisk.ErrCorrupt)
	}
	return nil
}

// checkGeometry validates cluster size and the tables' placement against
// the real file size, so that no table can make us allocate beyond it.
func (h *header) checkGeometry(name string, fileSize int64) error {
	if h.ClusterBits < 9 || h.ClusterBits > 21 {
		return fmt.Errorf("qcow2 %s: cluster_bits %d outside 9..21: %w", name, h.ClusterBits, vdisk.ErrUnsupported)
	}
	cs := int64(1) << h.ClusterBits
	h.clusterSize = cs
	if int64(h.HeaderLength) > cs {
		return fmt.Errorf("qcow2 %s: header_length %d exceeds the cluster: %w", name, h.HeaderLength, vdisk.ErrCorrupt)
	}
	if h.Size > 1<<62 {
		return fmt.Errorf("qcow2 %s: virtual size %d too large: %w", name, h.Size, vdisk.ErrCorrupt)
	}
	perL2 := uint64(cs / 8)
	need := (h.Size + uint64(cs)*perL2 - 1) / (uint64(cs) * perL2)
	if uint64(h.L1Size) < need {
		return fmt.Errorf("qcow2 %s: L1 table has %d entries, virtual size %d needs %d: %w", name, h.L1Size, h.Size, need, vdisk.ErrCorrupt)
	}
	if h.L1Size > 0 && int64(h.L1TableOffset) < cs {
		return fmt.Errorf("qcow2 %s: L1 table at %#x overlaps the header: %w", name, h.L1TableOffset, vdisk.ErrCorrupt)
	}
	if err := checkTable(name, "L1 table", h.L1TableOffset, uint64(h.L1Size)*8, cs, fileSize); err != nil {
		return err
	}
	return checkTable(name, "refcount table", h.RefcountTableOffset, uint64(h.RefcountTableClusters)*uint64(cs), cs, fileSize)
}

// checkTable checks that a table of length bytes at off is cluster aligned
// and lies inside the file.
func checkTable(name, what string, off, length uint64, cs, fileSize int64) error {
	if off%uint64(cs) != 0 {
		return fmt.Errorf("qcow2 %s: %s offset %#x not cluster aligned: %w", name, what, off, vdisk.ErrCorrupt)
	}
	if length > uint64(fileSize) || off > uint64(fileSize)-length {
		return fmt.Errorf("qcow2 %s: %s (%d bytes at %#x) extends past end of file (%d bytes): %w", name, what, length, off, fileSize, vdisk.ErrCorrupt)
	}
	return nil
}

// readExtensions walks the header extensions, which must end inside the
// first cluster. The area is read a page at a time, doubling while an
// extension runs past what was read: extensions take a few hundred bytes
// while the area runs to the cluster's end (64 KiB by default), and ls
// opens every image of a library.
func (h *header) readExtensions(f vdisk.File, fileSize int64) error {
	end := min(h.clusterSize, fileSize)
	if h.BackingFileOffset > uint64(h.HeaderLength) && h.BackingFileOffset < uint64(end) {
		end = int64(h.BackingFileOffset)
	}
	size := max(end-int64(h.HeaderLength), 0)
	for n := min(size, extChunk); ; n = min(2*n, size) {
		area := make([]byte, n)
		got, _ := f.ReadAt(area, int64(h.HeaderLength))
		whole := got < len(area) || n == size // all there is to read
		more, err := h.parseExtensions(f.Name(), area[:got], whole)
		if !more || err != nil {
			return err
		}
	}
}

// extChunk is the first read of the extension area.
const extChunk = 4096

// parseExtensions decodes the extensions in area. more asks for a longer
// area: one runs past its end and whole says there is more to read.
func (h *header) parseExtensions(name string, area []byte, whole bool) (more bool, err error) {
	for pos := 0; ; {
		if pos+8 > len(area) {
			// v2 images written by old tools may carry no end marker.
			return !whole, nil
		}
		typ := binary.BigEndian.Uint32(area[pos:])
		length := int(binary.BigEndian.Uint32(area[pos+4:]))
		if typ == extEnd {
			return false, nil
		}
		data := area[pos+8:]
		if length > len(data) {
			if !whole {
				return true, nil
			}
			return false, fmt.Errorf("qcow2 %s: header extension %#x at %d overruns the header cluster: %w", name, typ, h.HeaderLength+uint32(pos), vdisk.ErrCorrupt)
		}
		data = data[:length]
		switch typ {
		case extBackingFmt:
			h.backingFormat = string(data)
		case extFeatureNames:
			h.parseFeatureNames(data)
		case extBitmaps:
			h.hasBitmaps = true
		case extEncryption:
			return false, fmt.Errorf("qcow2 %s: full disk encryption header: %w", name, vdisk.ErrUnsupported)
		}
		pos += 8 + (length+7)&^7
	}
}

func (h *header) parseFeatureNames(data []byte) {
	h.featureNames = map[[2]byte]string{}
	for ; len(data) >= 48; data = data[48:] {
		nm := string(bytes.TrimRight(data[2:48], "\x00"))
		h.featureNames[[2]byte{data[0], data[1]}] = nm
	}
}

// featureList names the set bits of mask of feature type typ.
func (h *header) featureList(typ byte, mask uint64) string {
	var s []string
	for b := 0; b < 64; b++ {
		if mask&(1<<b) == 0 {
			continue
		}
		if nm, ok := h.featureNames[[2]byte{typ, byte(b)}]; ok && nm != "" {
			s = append(s, fmt.Sprintf("bit %d (%s)", b, nm))
		} else {
			s = append(s, fmt.Sprintf("bit %d", b))
		}
	}
	return strings.Join(s, ", ")
}

// checkFeatures refuses encryption and the incompatible features this
// package does not implement.
func (h *header) checkFeatures(name string) error {
	if h.CryptMethod != 0 {
		return fmt.Errorf("qcow2 %s: encrypted image (crypt_method %d): %w", name, h.CryptMethod, vdisk.ErrUnsupported)
	}
	if unk := h.IncompatibleFeatures &^ incKnown; unk != 0 {
		return fmt.Errorf("qcow2 %s: unknown incompatible features %s: %w", name, h.featureList(0, unk), vdisk.ErrUnsupported)
	}
	if h.IncompatibleFeatures&incExternalData != 0 {
		return fmt.Errorf("qcow2 %s: external data file: %w", name, vdisk.ErrUnsupported)
	}
	if h.IncompatibleFeatures&incExtendedL2 != 0 {
		return fmt.Errorf("qcow2 %s: extended L2 entries (subclusters): %w", name, vdisk.ErrUnsupported)
	}
	hasType := h.IncompatibleFeatures&incCompression != 0
	switch {
	case hasType && h.compression == compressDeflate:
		return fmt.Errorf("qcow2 %s: compression type bit set but compression_type is zlib: %w", name, vdisk.ErrCorrupt)
	case !hasType && h.compression != compressDeflate:
		return fmt.Errorf("qcow2 %s: compression_type %d without the compression type bit: %w", name, h.compression, vdisk.ErrCorrupt)
	case h.compression > compressZstd:
		return fmt.Errorf("qcow2 %s: compression_type %d: %w", name, h.compression, vdisk.ErrUnsupported)
	}
	return nil
}

// readBackingName reads the backing file name, stored in the first cluster.
func (h *header) readBackingName(f vdisk.File, fileSize int64) error {
	if h.BackingFileOffset == 0 {
		return nil
	}
	name := f.Name()
	off, n := h.BackingFileOffset, uint64(h.BackingFileSize)
	if n == 0 || n > 1023 || off > uint64(fileSize) || off+n > uint64(fileSize) || off+n > uint64(h.clusterSize) {
		return fmt.Errorf("qcow2 %s: backing file name (%d bytes at %#x) is out of bounds: %w", name, n, off, vdisk.ErrCorrupt)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, int64(off)); err != nil {
		return fmt.Errorf("qcow2 %s: reading backing file name: %w", name, err)
	}
	h.backingFile = string(buf)
	return nil
}
