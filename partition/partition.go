// Package partition reads a virtual disk's partition table (MBR with its
// extended-partition chain, or GPT) and numbers partitions the way Linux
// does: GPT entries by slot, MBR primaries 1-4, logical drives from 5.
package partition

import (
	"errors"
	"fmt"
	"io"
)

// Partition is one entry of the table.
type Partition struct {
	Number int    // as Linux numbers it: p1, p2, ... (logical drives from 5)
	Type   string // human name: "NTFS/exFAT", "EFI system", "Linux filesystem", ...
	// TypeID is the raw type: "0x07" for MBR, the type GUID for GPT.
	TypeID string
	// GUID is the GPT partition's unique GUID (used by Windows' MountedDevices).
	GUID     string
	Name     string // GPT partition name
	Start    int64  // byte offset on the disk
	Size     int64  // bytes
	Bootable bool
}

// Table is what a disk holds.
type Table struct {
	Kind       string // "gpt", "mbr", or "" when the disk has no partition table
	DiskID     string // MBR disk signature (8 hex digits) or GPT disk GUID
	Partitions []Partition
}

// ErrCorrupt wraps structural errors in a table.
var ErrCorrupt = errors.New("corrupt partition table")

// Read reads the partition table of a disk of the given size. A disk
// without an MBR signature has Kind "" and no partitions (a bare file
// system, or nothing).
func Read(r io.ReaderAt, size int64) (*Table, error) {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		if size < 512 {
			return &Table{}, nil
		}
		return nil, fmt.Errorf("reading MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA || looksLikeBootSector(mbr) {
		return &Table{}, nil
	}
	if hasProtectiveEntry(mbr) {
		t, err := readGPT(r, size)
		if err == nil {
			return t, nil
		}
		return nil, err
	}
	return readMBR(r, size, mbr)
}

// looksLikeBootSector tells a file system's boot sector (which also ends
// in 55 AA) from an MBR: FAT and NTFS boot sectors start with a jump and
// carry an OEM name and a sane BPB.
func looksLikeBootSector(b []byte) bool {
	if string(b[3:11]) == "NTFS    " || string(b[3:11]) == "EXFAT   " {
		return true
	}
	if b[0] != 0xEB && b[0] != 0xE9 {
		return false
	}
	bps := int(b[11]) | int(b[12])<<8
	spc := b[13]
	if bps != 512 && bps != 1024 && bps != 2048 && bps != 4096 {
		return false
	}
	if spc == 0 || spc&(spc-1) != 0 {
		return false
	}
	// A real MBR's partition entries have status 0x00 or 0x80.
	for i := 0; i < 4; i++ {
		if s := b[446+16*i]; s != 0 && s != 0x80 {
			return true
		}
	}
	return string(b[54:59]) == "FAT12" || string(b[54:59]) == "FAT16" || string(b[82:87]) == "FAT32"
}
