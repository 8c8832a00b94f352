package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"
)

// ntfsEpochDelta is the number of 100 ns ticks from 1601 to 1970.
const ntfsEpochDelta = 116444736000000000

func ntfsTime(t uint64) time.Time {
	v := int64(t) - ntfsEpochDelta
	return time.Unix(v/1e7, (v%1e7)*100).UTC()
}

func toNTFSTime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100 + ntfsEpochDelta)
}

// stdInfo is $STANDARD_INFORMATION.
type stdInfo struct {
	ctime, mtime, mftTime, atime uint64
	attrs                        uint32
	secID                        uint32
}

// fileName is a $FILE_NAME value.
type fileName struct {
	parent                       uint64 // with sequence number
	ctime, mtime, mftTime, atime uint64
	allocSize, dataSize          int64
	flags                        uint32
	reparse                      uint32
	ns                           byte
	name                         string
}

// File name spaces.
const (
	nsPOSIX    = 0
	nsWin32    = 1
	nsDOS      = 2
	nsWin32DOS = 3
)

// Windows file attribute bits.
const (
	faReadOnly     = 0x0001
	faHidden       = 0x0002
	faSystem       = 0x0004
	faDirectory    = 0x0010
	faArchive      = 0x0020
	faSparse       = 0x0200
	faReparse      = 0x0400
	faCompressed   = 0x0800
	faEncrypted    = 0x4000
	faDupIndexRoot = 0x10000000
)

func parseFileName(b []byte) (fileName, error) {
	var f fileName
	if len(b) < 0x42 {
		return f, fmt.Errorf("ntfs: $FILE_NAME of %d bytes: %w", len(b), syscall.EIO)
	}
	f.parent = binary.LittleEndian.Uint64(b)
	f.ctime = binary.LittleEndian.Uint64(b[8:])
	f.mtime = binary.LittleEndian.Uint64(b[0x10:])
	f.mftTime = binary.LittleEndian.Uint64(b[0x18:])
	f.atime = binary.LittleEndian.Uint64(b[0x20:])
	f.allocSize = int64(binary.LittleEndian.Uint64(b[0x28:]))
	f.dataSize = int64(binary.LittleEndian.Uint64(b[0x30:]))
	f.flags = binary.LittleEndian.Uint32(b[0x38:])
	f.reparse = binary.LittleEndian.Uint32(b[0x3c:])
	n := int(b[0x40])
	f.ns = b[0x41]
	if 0x42+2*n > len(b) {
		return f, fmt.Errorf("ntfs: $FILE_NAME name runs past its value: %w", syscall.EIO)
	}
	f.name = decodeName(b[0x42 : 0x42+2*n])
	return f, nil
}

// decodeNames fills si and names from the resident attributes.
func (in *inode) decodeNames() error {
	for _, a := range in.attrs {
		switch {
		case a.typ == atStandardInfo && a.resident:
			b := a.value
			if len(b) < 0x24 {
				return fmt.Errorf("ntfs: MFT record %d: short $STANDARD_INFORMATION: %w", in.num, syscall.EIO)
			}
			in.si.ctime = binary.LittleEndian.Uint64(b)
			in.si.mtime = binary.LittleEndian.Uint64(b[8:])
			in.si.mftTime = binary.LittleEndian.Uint64(b[0x10:])
			in.si.atime = binary.LittleEndian.Uint64(b[0x18:])
			in.si.attrs = binary.LittleEndian.Uint32(b[0x20:])
			if len(b) >= 0x38 {
				in.si.secID = binary.LittleEndian.Uint32(b[0x34:])
			}
		case a.typ == atFileName && a.resident:
			f, err := parseFileName(a.value)
			if err != nil {
				return fmt.Errorf("ntfs: MFT record %d: %w", in.num, err)
			}
			in.names = append(in.names, f)
		}
	}
	return nil
}
