package vhd

import (
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// WriteAt writes the virtual disk: in place in a fixed image and in
// allocated blocks; a new block is appended for the first write into an
// unallocated one (not for zeros in a dynamic image, which already read
// as zeros).
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if !d.writable {
		return 0, fmt.Errorf("vhd %s: %s: %w", d.name, d.roReason, vdisk.ErrReadOnly)
	}
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		return 0, fmt.Errorf("vhd %s: write of %d bytes at %d: %w", d.name, len(p), off, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, fmt.Errorf("vhd %s: write after close", d.name)
	}
	if d.ft.DiskType == diskFixed {
		if _, err := d.f.WriteAt(p, off); err != nil {
			return 0, fmt.Errorf("vhd %s: write at %d: %w", d.name, off, err)
		}
		return len(p), nil
	}
	return d.eachBlock(p, off, d.writeBlock)
}

// writeBlock writes p into block blk at byte in, allocating the block
// first if needed, and marks the sectors written in the block's bitmap.
func (d *Disk) writeBlock(p []byte, blk, in int64) error {
	if d.bat[blk] == unusedEntry {
		if d.parent == nil && vdisk.IsZero(p) {
			return nil
		}
		if err := d.allocate(blk); err != nil {
			return err
		}
	}
	s0 := in / sectorSize
	s1 := (in + int64(len(p)) + sectorSize - 1) / sectorSize
	p, in, err := d.mergePartialSectors(p, blk, in)
	if err != nil {
		return err
	}
	if len(p) > 0 {
		if err := d.writeData(p, blk, in); err != nil {
			return err
		}
	}
	return d.setBits(blk, s0, s1)
}

// mergePartialSectors handles a write that covers only part of a sector
// whose bit is clear (held by the parent, or zeros): the sector is written
// whole, the backing's bytes around the new ones, since its bit will send
// reads here. It returns what is left to write.
func (d *Disk) mergePartialSectors(p []byte, blk, in int64) ([]byte, int64, error) {
	bm, err := d.bitmap(blk)
	if err != nil {
		return nil, 0, err
	}
	if head := in % sectorSize; head != 0 && !bitSet(bm, in/sectorSize) {
		k := min(int64(sectorSize)-head, int64(len(p)))
		if err := d.writeMerged(blk, in-head, int(head), p[:k]); err != nil {
			return nil, 0, err
		}
		p, in = p[k:], in+k
	}
	end := in + int64(len(p))
	if tail := end % sectorSize; len(p) > 0 && tail != 0 && !bitSet(bm, end/sectorSize) {
		if err := d.writeMerged(blk, end-tail, 0, p[int64(len(p))-tail:]); err != nil {
			return nil, 0, err
		}
		p = p[:int64(len(p))-tail]
	}
	return p, in, nil
}

// writeMerged writes the sector at block byte sec: the backing's sector
// with b laid over it at byte at.
func (d *Disk) writeMerged(blk, sec int64, at int, b []byte) error {
	buf := make([]byte, sectorSize)
	if err := d.readBacking(buf, blk*d.blockSize+sec); err != nil {
		return err
	}
	copy(buf[at:], b)
	return d.writeData(buf, blk, sec)
}

func (d *Disk) writeData(p []byte, blk, in int64) error {
	pos := int64(d.bat[blk])*sectorSize + d.bitmapSize + in
	if _, err := d.f.WriteAt(p, pos); err != nil {
		return fmt.Errorf("vhd %s: writing block %d: %w", d.name, blk, err)
	}
	return nil
}
