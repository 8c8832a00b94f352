package vhd

import (
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// allocate appends a new block for blk where the footer stands, moves the
// footer after it and points the BAT entry at it. The block's data is
// zeros; its bitmap is all set in a dynamic image (zeros are what the
// block held before, as qemu writes it) and all clear in a differencing
// one (every sector still comes from the parent until written).
func (d *Disk) allocate(blk int64) error {
	pos := d.end
	newEnd := pos + d.bitmapSize + d.blockSize
	if pos/sectorSize >= int64(unusedEntry) {
		return fmt.Errorf("vhd %s: no room for block %d: the file would pass the 2 TiB a BAT entry can address: %w", d.name, blk, vdisk.ErrUnsupported)
	}
	fsize, err := d.f.Size()
	if err != nil {
		return fmt.Errorf("vhd %s: %w", d.name, err)
	}
	// Extending gives zeros; what stood in the new block's place before
	// (the old footer, stray bytes) is cleared by hand.
	if fsize < newEnd+footerSize {
		if err := d.f.Truncate(newEnd + footerSize); err != nil {
			return fmt.Errorf("vhd %s: growing file for block %d: %w", d.name, blk, err)
		}
	}
	bm := make([]byte, d.bitmapSize)
	if d.parent == nil {
		for i := range bm {
			bm[i] = 0xff
		}
	}
	if _, err := d.f.WriteAt(bm, pos); err != nil {
		return fmt.Errorf("vhd %s: writing bitmap of new block %d: %w", d.name, blk, err)
	}
	if err := d.zero(pos+d.bitmapSize, min(fsize, newEnd)); err != nil {
		return err
	}
	if err := d.writeFooter(newEnd); err != nil {
		return err
	}
	if err := d.writeBATEntry(blk, uint32(pos/sectorSize)); err != nil {
		return err
	}
	d.end = newEnd
	d.putBitmap(blk, bm)
	return nil
}

// zero writes zeros over [from, to) of the file.
func (d *Disk) zero(from, to int64) error {
	if from >= to {
		return nil
	}
	buf := make([]byte, min(to-from, 1<<20))
	for from < to {
		n := min(to-from, int64(len(buf)))
		if _, err := d.f.WriteAt(buf[:n], from); err != nil {
			return fmt.Errorf("vhd %s: clearing new block at %d: %w", d.name, from, err)
		}
		from += n
	}
	return nil
}

// writeFooter puts the footer at its new place at the end of the file,
// and the copy at offset 0 when that one was found damaged.
func (d *Disk) writeFooter(at int64) error {
	if _, err := d.f.WriteAt(d.ftRaw, at); err != nil {
		return fmt.Errorf("vhd %s: writing footer at %d: %w", d.name, at, err)
	}
	if d.copyStale {
		if _, err := d.f.WriteAt(d.ftRaw, 0); err != nil {
			return fmt.Errorf("vhd %s: writing footer copy: %w", d.name, err)
		}
		d.copyStale = false
	}
	return nil
}
