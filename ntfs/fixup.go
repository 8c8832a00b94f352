package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// fixupStride is NTFS_BLOCK_SIZE: the update sequence protects the last two
// bytes of every 512-byte block whatever the sector size.
const fixupStride = 512

// applyFixup checks and undoes the update sequence of a multi-sector
// structure (FILE record, INDX block) read from disk.
func applyFixup(buf []byte, magic string) error {
	if len(buf) < 0x30 || string(buf[0:4]) != magic {
		return fmt.Errorf("ntfs: %s block has bad magic %q: %w", magic, safeMagic(buf), syscall.EIO)
	}
	off := int(binary.LittleEndian.Uint16(buf[4:]))
	count := int(binary.LittleEndian.Uint16(buf[6:]))
	if count < 2 || count-1 != len(buf)/fixupStride || off+2*count > len(buf) || off < 8 {
		return fmt.Errorf("ntfs: %s block: bad update sequence (offset %d, count %d): %w", magic, off, count, syscall.EIO)
	}
	usn := buf[off : off+2]
	for i := 1; i < count; i++ {
		end := i*fixupStride - 2
		if buf[end] != usn[0] || buf[end+1] != usn[1] {
			return fmt.Errorf("ntfs: %s block: torn write in block %d: %w", magic, i-1, syscall.EIO)
		}
		copy(buf[end:end+2], buf[off+2*i:off+2*i+2])
	}
	return nil
}

// protectFixup is the inverse of applyFixup, for a copy about to be
// written: it bumps the sequence number and stores the protected bytes.
func protectFixup(buf []byte) {
	off := int(binary.LittleEndian.Uint16(buf[4:]))
	count := int(binary.LittleEndian.Uint16(buf[6:]))
	usn := binary.LittleEndian.Uint16(buf[off:]) + 1
	if usn == 0 || usn == 0xffff {
		usn = 1
	}
	binary.LittleEndian.PutUint16(buf[off:], usn)
	for i := 1; i < count && i*fixupStride <= len(buf); i++ {
		end := i*fixupStride - 2
		copy(buf[off+2*i:off+2*i+2], buf[end:end+2])
		binary.LittleEndian.PutUint16(buf[end:], usn)
	}
}

func safeMagic(b []byte) string {
	if len(b) < 4 {
		return ""
	}
	return string(b[:4])
}
