package vhd

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

const (
	sectorSize = 512
	footerSize = 512
	// oldFooterSize is the footer length written by Virtual PC before
	// 2004: the same fields, without the last reserved byte.
	oldFooterSize = 511

	diskFixed        = 2
	diskDynamic      = 3
	diskDifferencing = 4

	noOffset = ^uint64(0)
)

var footerCookie = []byte("conectix")

// footer is the hard disk footer (VHD specification, "Hard Disk Footer
// Format"): big-endian, 512 bytes, at the end of every image and, for
// dynamic and differencing images, copied at offset 0.
type footer struct {
	Cookie             [8]byte
	Features           uint32
	FileFormatVersion  uint32
	DataOffset         uint64
	TimeStamp          uint32
	CreatorApplication [4]byte
	CreatorVersion     uint32
	CreatorHostOS      uint32
	OriginalSize       uint64
	CurrentSize        uint64
	DiskGeometry       uint32
	DiskType           uint32
	Checksum           uint32
	UniqueID           [16]byte
	SavedState         uint8
	Reserved           [427]byte
}

// checksum is the one's complement of the byte sum of a structure, with
// the checksum field itself counted as zero.
func checksum(b []byte, field int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= field && i < field+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

const footerChecksumField = 64

// parseFooter decodes a 512-byte footer and verifies its cookie and checksum.
func parseFooter(b []byte) (footer, error) {
	var ft footer
	if len(b) != footerSize || !bytes.Equal(b[:8], footerCookie) {
		return ft, fmt.Errorf("no footer cookie: %w", vdisk.ErrCorrupt)
	}
	if _, err := binary.Decode(b, binary.BigEndian, &ft); err != nil {
		return ft, fmt.Errorf("footer: %v: %w", err, vdisk.ErrCorrupt)
	}
	if want := checksum(b, footerChecksumField); want != ft.Checksum {
		return ft, fmt.Errorf("footer checksum %#08x, computed %#08x: %w", ft.Checksum, want, vdisk.ErrCorrupt)
	}
	return ft, nil
}

// footerAtEnd returns the footer bytes at the end of a file of size fsize,
// padded to 512 bytes for the old 511-byte footer, and where it starts.
func footerAtEnd(f vdisk.File, fsize int64) ([]byte, int64, bool) {
	if fsize < oldFooterSize {
		return nil, 0, false
	}
	buf := make([]byte, footerSize)
	start := max(fsize-footerSize, 0)
	n, _ := f.ReadAt(buf[:fsize-start], start)
	buf = buf[:n]
	if n == footerSize && bytes.Equal(buf[:8], footerCookie) {
		return buf, start, true
	}
	// Old 511-byte footer: the cookie sits one byte further on.
	if n >= oldFooterSize && bytes.Equal(buf[n-oldFooterSize:n-oldFooterSize+8], footerCookie) {
		old := make([]byte, footerSize)
		copy(old, buf[n-oldFooterSize:n])
		return old, fsize - oldFooterSize, true
	}
	return nil, 0, false
}

// Match reports whether f holds a VHD: the footer cookie at offset 0 (the
// copy dynamic and differencing images keep there) or at the end (fixed
// images, including the old 511-byte footer).
func Match(f vdisk.File) bool {
	head := make([]byte, 8)
	if n, _ := f.ReadAt(head, 0); n == 8 && bytes.Equal(head, footerCookie) {
		return true
	}
	fsize, err := f.Size()
	if err != nil {
		return false
	}
	_, _, ok := footerAtEnd(f, fsize)
	return ok
}

func variantName(diskType uint32) string {
	switch diskType {
	case diskFixed:
		return "fixed"
	case diskDynamic:
		return "dynamic"
	case diskDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("type %d", diskType)
}
