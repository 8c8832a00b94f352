package vhd

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/offvm/offvm/vdisk"
)

// loadBAT reads the block allocation table and checks every entry: inside
// the file, no two blocks sharing sectors. It also finds where the next
// block goes: after every structure the file holds.
func (d *Disk) loadBAT(fsize int64) error {
	nblocks := (d.size + d.blockSize - 1) / d.blockSize
	if int64(d.hdr.MaxTableEntries) < nblocks {
		return fmt.Errorf("vhd %s: BAT has %d entries, a disk of %d bytes needs %d: %w",
			d.name, d.hdr.MaxTableEntries, d.size, nblocks, vdisk.ErrCorrupt)
	}
	off := d.hdr.TableOffset
	// The whole table must lie in the file: this bounds what is
	// allocated below, and where new blocks may go.
	if off > uint64(fsize) || uint64(fsize)-off < uint64(d.hdr.MaxTableEntries)*4 {
		return fmt.Errorf("vhd %s: BAT at %d (%d entries) runs past the end of the file (%d bytes): %w",
			d.name, off, d.hdr.MaxTableEntries, fsize, vdisk.ErrCorrupt)
	}
	d.batOff = int64(off)
	raw := make([]byte, nblocks*4)
	if _, err := readFull(d.f, raw, d.batOff); err != nil {
		return fmt.Errorf("vhd %s: reading BAT: %w", d.name, err)
	}
	d.bat = make([]uint32, nblocks)
	for i := range d.bat {
		d.bat[i] = binary.BigEndian.Uint32(raw[i*4:])
	}
	return d.checkBlocks(fsize)
}

func (d *Disk) checkBlocks(fsize int64) error {
	span := d.bitmapSize + d.blockSize
	end := max(d.end, d.batOff+int64(d.hdr.MaxTableEntries)*4, int64(d.ft.DataOffset)+headerSize)
	for _, l := range d.hdr.Locators {
		if l.PlatformDataLen != 0 && l.PlatformDataOff <= uint64(fsize) && uint64(fsize)-l.PlatformDataOff >= uint64(l.PlatformDataLen) {
			end = max(end, int64(l.PlatformDataOff)+int64(l.PlatformDataLen))
		}
	}
	var starts []int64
	for i, e := range d.bat {
		if e == unusedEntry {
			continue
		}
		start := int64(e) * sectorSize
		if start+span > fsize {
			return fmt.Errorf("vhd %s: BAT entry %d points to a block at %d past the end of the file (%d bytes): %w",
				d.name, i, start, fsize, vdisk.ErrCorrupt)
		}
		if overlaps(start, span, 0, footerSize) || overlaps(start, span, int64(d.ft.DataOffset), headerSize) ||
			overlaps(start, span, d.batOff, int64(len(d.bat))*4) {
			return fmt.Errorf("vhd %s: BAT entry %d points into the image's metadata: %w", d.name, i, vdisk.ErrCorrupt)
		}
		starts = append(starts, start)
		end = max(end, start+span)
	}
	slices.Sort(starts)
	for i := 1; i < len(starts); i++ {
		if starts[i] < starts[i-1]+span {
			return fmt.Errorf("vhd %s: blocks at %d and %d overlap: %w", d.name, starts[i-1], starts[i], vdisk.ErrCorrupt)
		}
	}
	d.end = roundUp(end, sectorSize)
	return nil
}

// writeBATEntry writes one entry of the table, in memory and in the file.
func (d *Disk) writeBATEntry(blk int64, sector uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sector)
	if _, err := d.f.WriteAt(b[:], d.batOff+blk*4); err != nil {
		return fmt.Errorf("vhd %s: writing BAT entry %d: %w", d.name, blk, err)
	}
	d.bat[blk] = sector
	return nil
}

func overlaps(a, alen, b, blen int64) bool { return a < b+blen && b < a+alen }
