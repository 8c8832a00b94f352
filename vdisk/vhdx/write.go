package vhdx

import (
	"encoding/binary"
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// WriteAt writes the virtual disk: in place into allocated blocks, new
// blocks appended at the end of the file.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if !d.writable {
		return 0, vdisk.ErrReadOnly
	}
	if err := vdisk.CheckRange(off, len(p), d.geo.virtualSize); err != nil {
		return 0, fmt.Errorf("vhdx %s: write of %d bytes at %d: %w", d.f.Name(), len(p), off, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, fmt.Errorf("vhdx %s: write after close", d.f.Name())
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := d.beginWrite(true); err != nil {
		return 0, err
	}
	bs := d.geo.blockSize
	for pos := int64(0); pos < int64(len(p)); {
		v := off + pos
		b, within := v/bs, v%bs
		n := min(bs-within, int64(len(p))-pos)
		if err := d.writeBlock(b, within, p[pos:pos+n]); err != nil {
			return int(pos), err
		}
		pos += n
	}
	return len(p), nil
}

func (d *Disk) writeBlock(b, within int64, data []byte) error {
	idx := d.geo.payloadIndex(b)
	e := d.bat[idx]
	switch e.state() {
	case stateFullyPresent:
		return d.writeFile(data, e.offset()+within)
	case statePartiallyPresent:
		return d.writeSectors(b, e.offset(), within, data)
	}
	// Unallocated. Without a parent (or over an explicit zero block) it
	// reads as zeros, and so does a freshly appended block.
	inherits := d.parent != nil && e.state() != stateZero
	if !inherits && vdisk.IsZero(data) {
		return nil
	}
	host, err := d.allocate(d.geo.blockSize)
	if err != nil {
		return err
	}
	if !inherits || (within == 0 && int64(len(data)) == d.blockLen(b)) {
		if err := d.writeFile(data, host+within); err != nil {
			return err
		}
		return d.setBAT(idx, makeEntry(stateFullyPresent, host))
	}
	// The rest of the block stays the parent's: mark it partially present
	// after its data and bitmap bits are in place.
	if err := d.writeSectors(b, host, within, data); err != nil {
		return err
	}
	return d.setBAT(idx, makeEntry(statePartiallyPresent, host))
}

// blockLen is how much of block b lies inside the virtual disk.
func (d *Disk) blockLen(b int64) int64 {
	return min(d.geo.blockSize, d.geo.virtualSize-b*d.geo.blockSize)
}

// writeSectors writes data into a block of a differencing image whose
// payload lives at host, widening it to whole sectors with the current
// content, and sets those sectors' bitmap bits.
func (d *Disk) writeSectors(b, host, within int64, data []byte) error {
	ss := d.geo.sectorSize
	lo := within / ss * ss
	hi := (within + int64(len(data)) + ss - 1) / ss * ss
	buf := data
	if lo != within || hi != within+int64(len(data)) {
		buf = make([]byte, hi-lo)
		if err := d.readLocked(buf, b*d.geo.blockSize+lo); err != nil {
			return err
		}
		copy(buf[within-lo:], data)
	}
	if err := d.writeFile(buf, host+lo); err != nil {
		return err
	}
	return d.setBits(b, lo/ss, hi/ss)
}

// setBits marks sectors first..end-1 of block b as present in this file,
// allocating the chunk's sector bitmap block when it has none.
func (d *Disk) setBits(b, first, end int64) error {
	idx := d.geo.bitmapIndex(b)
	sb := d.bat[idx]
	if sb.state() != sbStatePresent {
		host, err := d.allocate(sectorBitmapSize)
		if err != nil {
			return err
		}
		sb = makeEntry(sbStatePresent, host)
		if err := d.setBAT(idx, sb); err != nil {
			return err
		}
	}
	base := (b % d.geo.chunkRatio) * (d.geo.blockSize / d.geo.sectorSize)
	lo, hi := (base+first)/8, (base+end-1)/8+1
	bits := make([]byte, hi-lo)
	if _, err := d.f.ReadAt(bits, sb.offset()+lo); err != nil {
		return fmt.Errorf("vhdx %s: reading sector bitmap: %w", d.f.Name(), err)
	}
	for s := base + first; s < base+end; s++ {
		bits[s/8-lo] |= 1 << (s % 8)
	}
	return d.writeFile(bits, sb.offset()+lo)
}

// allocate appends n zero bytes at the 1 MiB aligned end of the file.
func (d *Disk) allocate(n int64) (int64, error) {
	host := (d.fileEnd + mib - 1) / mib * mib
	if err := d.f.Truncate(host + n); err != nil {
		return 0, fmt.Errorf("vhdx %s: growing file to %d: %w", d.f.Name(), host+n, err)
	}
	d.fileEnd = host + n
	return host, nil
}

// setBAT writes one BAT entry, and only that one.
func (d *Disk) setBAT(idx int64, e batEntry) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(e))
	if err := d.writeFile(b[:], d.batOff+idx*8); err != nil {
		return err
	}
	d.bat[idx] = e
	return nil
}

func (d *Disk) writeFile(p []byte, off int64) error {
	if _, err := d.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("vhdx %s: writing %d bytes at %d: %w", d.f.Name(), len(p), off, err)
	}
	return nil
}
