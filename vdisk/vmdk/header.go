package vmdk

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

const (
	sector = 512

	magicKDMV = 0x564d444b // "KDMV" little-endian: hosted sparse extent
	magicCOWD = 0x44574f43 // "COWD": ESX VMFSSPARSE extent, not supported

	flagNewlineTest = 1 << 0
	flagRedundantGT = 1 << 1
	flagZeroGrain   = 1 << 2
	flagCompressed  = 1 << 16
	flagMarkers     = 1 << 17

	compressDeflate = 1

	// gdAtEnd in the header's gdOffset says the real header is the footer
	// (streamOptimized written as a stream).
	gdAtEnd = ^uint64(0)

	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3

	maxGrainSectors = 32768 // 16 MiB grains; VMware and qemu use 128 sectors
	maxGTEntries    = 4096  // VMware and qemu use 512
	maxCapacity     = 1 << 53
)

// header is the 512-byte SparseExtentHeader at the start of a sparse
// extent (and, for streams, its copy in the footer).
type header struct {
	Magic              uint32
	Version            uint32
	Flags              uint32
	Capacity           uint64 // sectors
	GrainSize          uint64 // sectors
	DescriptorOffset   uint64 // sectors
	DescriptorSize     uint64 // sectors
	NumGTEsPerGT       uint32
	RGDOffset          uint64 // sectors
	GDOffset           uint64 // sectors
	OverHead           uint64 // sectors
	UncleanShutdown    uint8
	SingleEndLineChar  byte
	NonEndLineChar     byte
	DoubleEndLineChar1 byte
	DoubleEndLineChar2 byte
	CompressAlgorithm  uint16
}

func readHeader(f vdisk.File, off int64) (header, error) {
	var h header
	buf := make([]byte, sector)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return h, fmt.Errorf("vmdk %s: reading sparse header at %d: %w", f.Name(), off, err)
	}
	// binary.Read of a packed struct: encoding/binary ignores Go padding.
	if _, err := binary.Decode(buf, binary.LittleEndian, &h); err != nil {
		return h, fmt.Errorf("vmdk %s: decoding sparse header: %w", f.Name(), err)
	}
	return h, nil
}

// loadHeader reads the header of a sparse extent, follows it to the footer
// when the grain directory is at the end, and checks every field that later
// sizes an allocation or an offset.
func loadHeader(f vdisk.File, fileSize int64) (header, error) {
	if fileSize < sector {
		return header{}, fmt.Errorf("vmdk %s: file of %d bytes is shorter than a sparse header: %w", f.Name(), fileSize, vdisk.ErrCorrupt)
	}
	h, err := readHeader(f, 0)
	if err != nil {
		return h, err
	}
	if h.Magic == magicCOWD {
		return h, fmt.Errorf("vmdk %s: ESX VMFSSPARSE (COWD) extents: %w", f.Name(), vdisk.ErrUnsupported)
	}
	if h.Magic != magicKDMV {
		return h, fmt.Errorf("vmdk %s: no KDMV sparse extent magic: %w", f.Name(), vdisk.ErrCorrupt)
	}
	if h.GDOffset == gdAtEnd {
		if h, err = loadFooter(f, fileSize); err != nil {
			return h, err
		}
	}
	return h, checkHeader(f.Name(), h, fileSize)
}

// loadFooter reads the footer marker, the footer header and the
// end-of-stream marker that close a streamOptimized file.
func loadFooter(f vdisk.File, fileSize int64) (header, error) {
	bad := func(why string) (header, error) {
		return header{}, fmt.Errorf("vmdk %s: streamOptimized footer %s (file truncated or stream incomplete): %w", f.Name(), why, vdisk.ErrCorrupt)
	}
	if fileSize < 4*sector || fileSize%sector != 0 {
		return bad("missing: file size is not a whole number of sectors")
	}
	tail := make([]byte, 3*sector)
	if _, err := f.ReadAt(tail, fileSize-3*sector); err != nil && err != io.EOF {
		return header{}, fmt.Errorf("vmdk %s: reading footer: %w", f.Name(), err)
	}
	le := binary.LittleEndian
	if le.Uint32(tail[8:]) != 0 || le.Uint32(tail[12:]) != markerFooter {
		return bad("marker not found")
	}
	eos := tail[2*sector:]
	if le.Uint64(eos) != 0 || le.Uint32(eos[8:]) != 0 || le.Uint32(eos[12:]) != markerEOS {
		return bad("not followed by the end-of-stream marker")
	}
	h, err := readHeader(f, fileSize-2*sector)
	if err != nil {
		return h, err
	}
	if h.Magic != magicKDMV {
		return bad("has no KDMV magic")
	}
	if h.GDOffset == gdAtEnd {
		return bad("still says the grain directory is at the end")
	}
	return h, nil
}

func checkHeader(name string, h header, fileSize int64) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vmdk %s: sparse header: %s: %w", name, fmt.Sprintf(format, a...), vdisk.ErrCorrupt)
	}
	switch {
	case h.Version < 1 || h.Version > 3:
		return fmt.Errorf("vmdk %s: sparse header version %d: %w", name, h.Version, vdisk.ErrUnsupported)
	case h.GrainSize == 0 || h.GrainSize > maxGrainSectors || h.GrainSize&(h.GrainSize-1) != 0:
		return bad("grain size of %d sectors is not a power of two up to %d", h.GrainSize, maxGrainSectors)
	case h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > maxGTEntries:
		return bad("%d entries per grain table", h.NumGTEsPerGT)
	case h.Capacity > maxCapacity:
		return bad("capacity of %d sectors", h.Capacity)
	case h.Flags&flagCompressed != 0 && h.CompressAlgorithm != compressDeflate:
		return fmt.Errorf("vmdk %s: compression algorithm %d: %w", name, h.CompressAlgorithm, vdisk.ErrUnsupported)
	}
	if h.Flags&flagNewlineTest != 0 && (h.SingleEndLineChar != '\n' || h.DoubleEndLineChar1 != '\r' || h.DoubleEndLineChar2 != '\n') {
		return bad("end-of-line test characters altered (file transferred in text mode?)")
	}
	gdBytes := int64(gdEntries(h)) * 4
	if h.GDOffset == 0 || h.GDOffset > uint64(fileSize)/sector || int64(h.GDOffset)*sector+gdBytes > fileSize {
		return bad("grain directory at sector %d (%d bytes) lies outside the %d-byte file", h.GDOffset, gdBytes, fileSize)
	}
	if h.Flags&flagRedundantGT != 0 && h.RGDOffset != 0 {
		if h.RGDOffset > uint64(fileSize)/sector || int64(h.RGDOffset)*sector+gdBytes > fileSize {
			return bad("redundant grain directory at sector %d lies outside the %d-byte file", h.RGDOffset, fileSize)
		}
	}
	return nil
}

// gdEntries is the number of grain tables the capacity needs.
func gdEntries(h header) uint64 {
	perGT := h.GrainSize * uint64(h.NumGTEsPerGT)
	return (h.Capacity + perGT - 1) / perGT
}
