package detect

import (
	"bytes"

	"github.com/offvm/offvm/vdisk"
)

// looksLikeRawDisk recognises a raw disk by what the guest wrote on it: an
// MBR or GPT (boot signature), or a bare file system's magic.
func looksLikeRawDisk(f vdisk.File) bool {
	size, err := f.Size()
	if err != nil || size < 64*1024 || size%512 != 0 {
		return false
	}
	b := make([]byte, 0x8006)
	n, _ := f.ReadAt(b, 0)
	b = b[:n]
	if len(b) < 0x8006 {
		return false
	}
	switch {
	case b[510] == 0x55 && b[511] == 0xAA: // MBR, protective MBR, FAT or NTFS boot sector
		return true
	case b[1080] == 0x53 && b[1081] == 0xEF: // ext2/3/4 superblock magic
		return true
	case bytes.Equal(b[0x8001:0x8006], []byte("CD001")): // ISO 9660
		return true
	case string(b[:4]) == "XFSB", string(b[:6]) == "LUKS\xba\xbe": // bare XFS, LUKS
		return true
	case string(b[512:520]) == "LABELONE": // an LVM physical volume on the whole disk
		return true
	}
	m := make([]byte, 8) // btrfs: superblock at 64 KiB
	n, _ = f.ReadAt(m, 0x10040)
	return n == 8 && string(m) == "_BHRfS_M"
}
