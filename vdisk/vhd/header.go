package vhd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf16"

	"github.com/offvm/offvm/vdisk"
)

const (
	headerSize          = 1024
	headerChecksumField = 36
	numLocators         = 8

	// Blocks are a power-of-two number of sectors (2 MiB by default).
	// The bound keeps one block's work within reason on hostile input.
	minBlockSize = sectorSize
	maxBlockSize = 256 << 20
)

var headerCookie = []byte("cxsparse")

// locatorEntry is one parent locator entry of the dynamic disk header.
type locatorEntry struct {
	PlatformCode      [4]byte
	PlatformDataSpace uint32 // sectors per the spec, bytes as Windows writes it
	PlatformDataLen   uint32
	Reserved          uint32
	PlatformDataOff   uint64
}

// header is the dynamic disk header ("Dynamic Disk Header Format"), used by
// dynamic and differencing images; the footer's data offset points at it.
type header struct {
	Cookie          [8]byte
	DataOffset      uint64
	TableOffset     uint64
	HeaderVersion   uint32
	MaxTableEntries uint32
	BlockSize       uint32
	Checksum        uint32
	ParentUniqueID  [16]byte
	ParentTimeStamp uint32
	Reserved1       uint32
	ParentName      [512]byte
	Locators        [numLocators]locatorEntry
	Reserved2       [256]byte
}

func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) != headerSize || !bytes.Equal(b[:8], headerCookie) {
		return h, fmt.Errorf("no dynamic header cookie %q: %w", headerCookie, vdisk.ErrCorrupt)
	}
	if _, err := binary.Decode(b, binary.BigEndian, &h); err != nil {
		return h, fmt.Errorf("dynamic header: %v: %w", err, vdisk.ErrCorrupt)
	}
	if want := checksum(b, headerChecksumField); want != h.Checksum {
		return h, fmt.Errorf("dynamic header checksum %#08x, computed %#08x: %w", h.Checksum, want, vdisk.ErrCorrupt)
	}
	bs := h.BlockSize
	if bs < minBlockSize || bs > maxBlockSize || bs&(bs-1) != 0 {
		return h, fmt.Errorf("block size %d is not a power of two between %d and %d: %w", bs, minBlockSize, maxBlockSize, vdisk.ErrUnsupported)
	}
	return h, nil
}

// parentName is the header's parent name, UTF-16 big-endian, NUL-padded.
func (h *header) parentName() string {
	u := make([]uint16, 0, len(h.ParentName)/2)
	for i := 0; i+1 < len(h.ParentName); i += 2 {
		c := binary.BigEndian.Uint16(h.ParentName[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// bitmapSize is the length of a block's sector bitmap: one bit per
// sector, padded to a whole sector.
func bitmapSize(blockSize int64) int64 {
	bits := blockSize / sectorSize
	bytes := (bits + 7) / 8
	return roundUp(bytes, sectorSize)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
