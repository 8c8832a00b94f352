package vhd

import (
	"errors"
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

// ReadAt reads the virtual disk. Within a block, runs of sectors from the
// same source (this file, the parent, or nothing) are read with one call.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		if off < 0 || off >= d.size {
			return 0, io.EOF
		}
		n, err := d.ReadAt(p[:d.size-off], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, fmt.Errorf("vhd %s: read after close", d.name)
	}
	if d.ft.DiskType == diskFixed {
		if _, err := readFull(d.f, p, off); err != nil {
			return 0, fmt.Errorf("vhd %s: read at %d: %w", d.name, off, err)
		}
		return len(p), nil
	}
	return d.eachBlock(p, off, d.readBlock)
}

// eachBlock cuts p at off into the pieces that fall in one block each and
// hands them to fn with the block's number and the offset in it; it returns
// how many bytes went through before fn failed. Reads and writes of a
// dynamic or differencing image both go block by block.
func (d *Disk) eachBlock(p []byte, off int64, fn func(q []byte, blk, in int64) error) (int, error) {
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		blk, in := pos/d.blockSize, pos%d.blockSize
		n := int(min(int64(len(p)-done), d.blockSize-in))
		if err := fn(p[done:done+n], blk, in); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// readBlock fills p from block blk starting at byte in of the block.
// Sectors whose bitmap bit is clear come from the backing: the parent of
// a differencing image, zeros in a dynamic one (the spec's "sector holds
// no data"; qemu and Windows set every bit they allocate, so this only
// matters for images whose writers cleared bits).
func (d *Disk) readBlock(p []byte, blk, in int64) error {
	if d.bat[blk] == unusedEntry {
		return d.readBacking(p, blk*d.blockSize+in)
	}
	bm, err := d.bitmap(blk)
	if err != nil {
		return err
	}
	// Walk runs of sectors with the same bit: one read per run.
	for len(p) > 0 {
		s := in / sectorSize
		mine := bitSet(bm, s)
		end := (s + 1) * sectorSize
		for end < in+int64(len(p)) && bitSet(bm, end/sectorSize) == mine {
			end += sectorSize
		}
		n := min(end-in, int64(len(p)))
		if mine {
			err = d.readData(p[:n], blk, in)
		} else {
			err = d.readBacking(p[:n], blk*d.blockSize+in)
		}
		if err != nil {
			return err
		}
		p, in = p[n:], in+n
	}
	return nil
}

func (d *Disk) readData(p []byte, blk, in int64) error {
	pos := int64(d.bat[blk])*sectorSize + d.bitmapSize + in
	if _, err := readFull(d.f, p, pos); err != nil {
		return fmt.Errorf("vhd %s: reading block %d: %w", d.name, blk, err)
	}
	return nil
}

// readBacking reads what lies under this image at virtual offset off:
// the parent's data, or zeros for a dynamic image and past the end of a
// parent smaller than its child.
func (d *Disk) readBacking(p []byte, off int64) error {
	if d.parent == nil {
		clear(p)
		return nil
	}
	psize := d.parent.Size()
	if off >= psize {
		clear(p)
		return nil
	}
	if rest := psize - off; int64(len(p)) > rest {
		clear(p[rest:])
		p = p[:rest]
	}
	n, err := d.parent.ReadAt(p, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
		return fmt.Errorf("vhd %s: reading parent %s at %d: %w", d.name, d.parentPath, off, err)
	}
	return nil
}

// readFull reads len(p) bytes at off; a short read means the file ends
// before a structure the image says is there.
func readFull(f vdisk.File, p []byte, off int64) (int, error) {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("file ends at %d: %w", off+int64(n), vdisk.ErrCorrupt)
	}
	return n, err
}
