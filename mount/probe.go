package mount

import (
	"bytes"
	"encoding/binary"
	"io"
)

// probeFS names the file system at the start of dev by its magic numbers,
// or "" when none is recognised (swap, LVM, an empty partition).
func probeFS(dev io.ReaderAt) string {
	// the first 4 KiB hold every magic but ISO 9660's (at 32 KiB), read
	// only when none matched: listing a library reads less per volume
	b := make([]byte, 0x1000)
	n, _ := dev.ReadAt(b, 0)
	b = b[:n]
	if len(b) >= 512 {
		if string(b[3:11]) == "NTFS    " {
			return "ntfs"
		}
		if string(b[3:11]) == "EXFAT   " {
			return "exfat"
		}
		if t := fatType(b); t != "" {
			return t
		}
	}
	if isXFS(b) {
		return "xfs"
	}
	if len(b) >= 0x478 && binary.LittleEndian.Uint16(b[0x438:]) == 0xEF53 {
		return extType(b[0x400:])
	}
	if iso := make([]byte, 5); len(b) == 0x1000 {
		if n, _ := dev.ReadAt(iso, 0x8001); n == len(iso) && bytes.Equal(iso, []byte("CD001")) {
			return "iso9660"
		}
	}
	if isBtrfs(dev) {
		return "btrfs"
	}
	return ""
}

// fatType applies the FAT specification's rule: the type follows from the
// count of data clusters, not from the label string in the boot sector.
func fatType(b []byte) string {
	if b[510] != 0x55 || b[511] != 0xAA || (b[0] != 0xEB && b[0] != 0xE9) {
		return ""
	}
	bps := uint32(binary.LittleEndian.Uint16(b[11:]))
	spc := uint32(b[13])
	rsv := uint32(binary.LittleEndian.Uint16(b[14:]))
	nfats := uint32(b[16])
	rootEnts := uint32(binary.LittleEndian.Uint16(b[17:]))
	total := uint32(binary.LittleEndian.Uint16(b[19:]))
	if total == 0 {
		total = binary.LittleEndian.Uint32(b[32:])
	}
	fatSz := uint32(binary.LittleEndian.Uint16(b[22:]))
	if fatSz == 0 {
		fatSz = binary.LittleEndian.Uint32(b[36:])
	}
	if bps < 512 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 || nfats == 0 || rsv == 0 || fatSz == 0 {
		return ""
	}
	rootSecs := (rootEnts*32 + bps - 1) / bps
	meta := rsv + nfats*fatSz + rootSecs
	if total <= meta {
		return ""
	}
	clusters := (total - meta) / spc
	switch {
	case clusters < 4085:
		return "fat12"
	case clusters < 65525:
		return "fat16"
	default:
		return "fat32"
	}
}

// extType tells ext2, ext3 and ext4 apart by their feature flags.
func extType(sb []byte) string {
	compat := binary.LittleEndian.Uint32(sb[0x5C:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	const hasJournal, extents, flexBG, bit64 = 0x4, 0x40, 0x200, 0x80
	switch {
	case incompat&(extents|flexBG|bit64) != 0:
		return "ext4"
	case compat&hasJournal != 0:
		return "ext3"
	default:
		return "ext2"
	}
}

// isXFS: the superblock's magic at the start of the volume.
func isXFS(b []byte) bool { return len(b) >= 4 && string(b[:4]) == "XFSB" }

// isBtrfs: the superblock's magic, 64 KiB into the volume.
func isBtrfs(dev io.ReaderAt) bool {
	m := make([]byte, 8)
	n, _ := dev.ReadAt(m, 0x10040)
	return n == 8 && string(m) == "_BHRfS_M"
}
