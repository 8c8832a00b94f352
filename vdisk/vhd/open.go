package vhd

import (
	"bytes"
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// Open presents the VHD image in f as a virtual disk.
func Open(f vdisk.File, opts vdisk.Options) (vdisk.Disk, error) {
	d, err := open(f, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func open(f vdisk.File, opts vdisk.Options) (*Disk, error) {
	d := &Disk{f: f, name: f.Name(), writable: opts.Writable}
	fsize, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("vhd %s: %w", d.name, err)
	}
	if err := d.readFooter(fsize); err != nil {
		return nil, err
	}
	switch d.ft.DiskType {
	case diskFixed:
		err = d.openFixed(fsize)
	case diskDynamic, diskDifferencing:
		err = d.openDynamic(fsize)
		if err == nil && d.ft.DiskType == diskDifferencing {
			err = d.openParent(fsize, opts)
		}
	default:
		err = fmt.Errorf("vhd %s: disk type %d is not fixed, dynamic or differencing: %w", d.name, d.ft.DiskType, vdisk.ErrUnsupported)
	}
	if err != nil {
		return nil, err
	}
	d.variant = variantName(d.ft.DiskType)
	switch {
	case !opts.Writable:
		d.roReason = "opened read-only"
	case d.ft.SavedState != 0:
		d.writable = false
		d.roReason = "the image is in a saved state (its virtual machine is suspended)"
	}
	return d, nil
}

// readFooter takes the footer at the end of the file or, when that one is
// damaged, the copy at offset 0 that dynamic images keep for this purpose.
func (d *Disk) readFooter(fsize int64) error {
	endRaw, endOff, found := footerAtEnd(d.f, fsize)
	var endErr error = fmt.Errorf("no footer in the last 512 bytes: %w", vdisk.ErrCorrupt)
	if found {
		if d.ft, endErr = parseFooter(endRaw); endErr == nil {
			d.ftRaw, d.end = endRaw, endOff
		}
	}
	cp := make([]byte, footerSize)
	n, _ := d.f.ReadAt(cp, 0)
	cft, cerr := parseFooter(cp[:n])
	if endErr != nil {
		if cerr != nil || cft.DiskType == diskFixed || fsize < footerSize {
			return fmt.Errorf("vhd %s: %w", d.name, endErr)
		}
		// The end footer is gone or damaged: trust the copy and put the
		// next block (and a good footer) at the end of the file.
		d.ft, d.ftRaw, d.end, d.copyStale = cft, cp, roundUp(fsize, sectorSize), false
		d.problems = append(d.problems, fmt.Sprintf("the footer at the end of the file is damaged (%v); it was read through its copy at offset 0, and a commit rewrites both", endErr))
		if found {
			d.end = endOff
		}
		return nil
	}
	d.copyStale = cerr != nil || !bytes.Equal(cp, d.ftRaw)
	return nil
}

func (d *Disk) openFixed(fsize int64) error {
	d.copyStale = false // offset 0 is the guest's first sector
	d.size = int64(d.ft.CurrentSize)
	if d.ft.CurrentSize > uint64(d.end) {
		return fmt.Errorf("vhd %s: fixed disk of %d bytes in a file of %d bytes: %w", d.name, d.ft.CurrentSize, fsize, vdisk.ErrCorrupt)
	}
	return nil
}

func (d *Disk) openDynamic(fsize int64) error {
	off := d.ft.DataOffset
	if off > uint64(fsize) || uint64(fsize)-off < headerSize {
		return fmt.Errorf("vhd %s: dynamic header at %d is past the end of the file (%d bytes): %w", d.name, off, fsize, vdisk.ErrCorrupt)
	}
	buf := make([]byte, headerSize)
	if _, err := readFull(d.f, buf, int64(off)); err != nil {
		return fmt.Errorf("vhd %s: reading dynamic header: %w", d.name, err)
	}
	h, err := parseHeader(buf)
	if err != nil {
		return fmt.Errorf("vhd %s: %w", d.name, err)
	}
	d.hdr = h
	d.blockSize = int64(h.BlockSize)
	d.bitmapSize = bitmapSize(d.blockSize)
	d.size = int64(d.ft.CurrentSize)
	if d.ft.CurrentSize > 1<<62 {
		return fmt.Errorf("vhd %s: disk size %d is out of range: %w", d.name, d.ft.CurrentSize, vdisk.ErrCorrupt)
	}
	if err := d.loadBAT(fsize); err != nil {
		return err
	}
	d.bitmaps.init()
	return nil
}
