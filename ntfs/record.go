package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// MFT record header flags.
const (
	recInUse = 0x0001
	recIsDir = 0x0002
)

// Well-known MFT record numbers.
const (
	recMFT      = 0
	recMFTMirr  = 1
	recLogFile  = 2
	recVolume   = 3
	recRoot     = 5
	recBitmap   = 6
	recBoot     = 7
	recSecure   = 9
	recUpCase   = 10
	firstUser   = 16
	refNumMask  = 0x0000ffffffffffff
	attrEndMark = 0xffffffff
)

// record is one MFT record with its update sequence undone.
type record struct {
	num     uint64
	buf     []byte
	seq     uint16
	links   uint16
	flags   uint16
	base    uint64 // base record number; 0 for a base record
	attrOff int
	used    int
	nextID  uint16
}

// parseRecordHeader checks a fixed-up FILE record.
func parseRecordHeader(buf []byte, num uint64) (*record, error) {
	r := &record{num: num, buf: buf}
	r.seq = binary.LittleEndian.Uint16(buf[0x10:])
	r.links = binary.LittleEndian.Uint16(buf[0x12:])
	r.attrOff = int(binary.LittleEndian.Uint16(buf[0x14:]))
	r.flags = binary.LittleEndian.Uint16(buf[0x16:])
	r.used = int(binary.LittleEndian.Uint32(buf[0x18:]))
	r.base = binary.LittleEndian.Uint64(buf[0x20:]) & refNumMask
	r.nextID = binary.LittleEndian.Uint16(buf[0x28:])
	if r.used > len(buf) || r.attrOff < 0x30 || r.attrOff+8 > r.used || r.attrOff%8 != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d: bad header (attrs at %d, %d bytes used): %w", num, r.attrOff, r.used, syscall.EIO)
	}
	return r, nil
}

// readRecord reads MFT record n from the $MFT data stream.
func (v *Volume) readRecord(n uint64) (*record, error) {
	size := int64(v.geo.recordSize)
	if n >= uint64(v.mftSize/size) {
		return nil, fmt.Errorf("ntfs: MFT record %d past the end of $MFT: %w", n, syscall.ENOENT)
	}
	buf := make([]byte, size)
	if err := v.readRuns(v.mftRuns, buf, int64(n)*size); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", n, err)
	}
	return decodeRecord(buf, n)
}

func decodeRecord(buf []byte, n uint64) (*record, error) {
	if string(buf[:4]) != "FILE" {
		return nil, fmt.Errorf("ntfs: MFT record %d is not in use (magic %q): %w", n, safeMagic(buf), syscall.ENOENT)
	}
	if err := applyFixup(buf, "FILE"); err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", n, err)
	}
	return parseRecordHeader(buf, n)
}

// readRuns fills p from the clusters that runs map, starting at byte off
// of the stream; holes and unmapped tails read as zeros.
func (v *Volume) readRuns(runs []run, p []byte, off int64) error {
	cs := v.geo.clusterSize
	for len(p) > 0 {
		vcn := off / cs
		i := findRun(runs, vcn)
		if i < 0 {
			clear(p)
			return nil
		}
		r := runs[i]
		inRun := (r.vcn+r.length)*cs - off
		n := int64(len(p))
		if n > inRun {
			n = inRun
		}
		if r.lcn < 0 {
			clear(p[:n])
		} else {
			pos := r.lcn*cs + (off - r.vcn*cs)
			if _, err := v.dev.ReadAt(p[:n], pos); err != nil {
				return fmt.Errorf("read at %d: %w", pos, syscall.EIO)
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}

// findRun returns the index of the run holding vcn, or -1.
func findRun(runs []run, vcn int64) int {
	lo, hi := 0, len(runs)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case vcn < runs[m].vcn:
			hi = m
		case vcn >= runs[m].vcn+runs[m].length:
			lo = m + 1
		default:
			return m
		}
	}
	return -1
}
