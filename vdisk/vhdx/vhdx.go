// Package vhdx reads and writes VHDX images ([MS-VHDX]): fixed, dynamic
// and differencing, with log replay.
//
// Reads translate whole runs of blocks into single host reads. Writes go
// in place into allocated blocks; new payload blocks (and, for
// differencing images, sector bitmap blocks) are appended at the 1 MiB
// aligned end of the file, and only the BAT entries that change are
// written. The first write of a session updates the header (new
// FileWriteGuid and DataWriteGuid) through the non-current header slot.
// The log is left empty: nothing here writes through it.
//
// Block states, as read: FULLY_PRESENT from the file; ZERO as zeros (in
// a differencing image too: the child says "zeros here"); NOT_PRESENT,
// UNDEFINED and UNMAPPED as the parent's data in a differencing image,
// else zeros; PARTIALLY_PRESENT (differencing only) sector by sector
// from the file or the parent, as the sector bitmap says.
//
// A differencing image's parent is opened through Options.OpenParent
// and must offer DataWriteGUID() [16]byte (as *Disk does), directly or
// through Unwrap() vdisk.Disk, so that parent_linkage can be checked.
package vhdx

import (
	"fmt"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// Disk is an open VHDX image.
type Disk struct {
	f        vdisk.File
	opts     vdisk.Options
	writable bool

	hdr     header
	hdrSlot int
	meta    *metadata
	geo     geometry
	batOff  int64

	parent     vdisk.Disk
	parentPath string

	// mu guards bat, fileEnd and the header; readers share it.
	mu           sync.RWMutex
	bat          []batEntry
	fileEnd      int64
	fileGUIDDone bool
	dataGUIDDone bool
	closed       bool
}

// Open presents the VHDX image in f as a virtual disk. A pending log is
// replayed: into memory when read-only, into the file when writable.
func Open(f vdisk.File, opts vdisk.Options) (vdisk.Disk, error) {
	d, err := open(f, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func open(f vdisk.File, opts vdisk.Options) (*Disk, error) {
	d := &Disk{f: f, opts: opts, writable: opts.Writable}
	var err error
	if d.hdr, d.hdrSlot, err = readHeaders(f); err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("vhdx %s: %w", f.Name(), err)
	}
	if size, err = d.replayLog(size); err != nil {
		return nil, err
	}
	bat, meta, err := readRegions(d.f, size)
	if err != nil {
		return nil, err
	}
	if d.meta, err = readMetadata(d.f, meta); err != nil {
		return nil, err
	}
	d.geo = newGeometry(d.meta)
	d.batOff = bat.offset
	if d.bat, err = readBAT(d.f, bat, d.geo, size, d.meta.hasParent); err != nil {
		return nil, err
	}
	d.fileEnd = size
	if d.writable {
		logR := region{int64(d.hdr.LogOffset), int64(d.hdr.LogLength)}
		if err := checkOverlaps(f.Name(), d.bat, d.geo, []region{{0, mib}, logR, bat, meta}); err != nil {
			return nil, err
		}
	}
	if d.meta.hasParent {
		if err := d.openParent(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// replayLog replays a pending log and returns the file size after it.
func (d *Disk) replayLog(size int64) (int64, error) {
	r, err := readLog(d.f, d.hdr, size)
	if err != nil || d.hdr.LogGUID.IsZero() {
		return size, err
	}
	if !d.writable {
		if r != nil {
			o := newOverlayFile(d.f, r, size)
			d.f = o
			return o.size, nil
		}
		return size, nil
	}
	if r != nil {
		if err := applyLog(d.f, r); err != nil {
			return 0, fmt.Errorf("vhdx %s: replaying log: %w", d.f.Name(), err)
		}
	}
	// The log is applied: a header without LogGuid says so.
	if err := d.beginWrite(false); err != nil {
		return 0, err
	}
	if size, err = d.f.Size(); err != nil {
		return 0, fmt.Errorf("vhdx %s: %w", d.f.Name(), err)
	}
	return size, nil
}

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.geo.virtualSize }

// Info names the format, variant and parent.
func (d *Disk) Info() vdisk.Info {
	in := vdisk.Info{Format: "vhdx", Variant: "dynamic", Parent: d.parentPath}
	switch {
	case d.meta.hasParent:
		in.Variant = "differencing"
	case d.meta.leaveAllocated:
		in.Variant = "fixed"
	}
	if !d.writable {
		in.ReadOnly = "opened read-only"
	}
	return in
}

// DataWriteGUID is the header's DataWriteGuid, which a child's
// parent_linkage must name.
func (d *Disk) DataWriteGUID() [16]byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.hdr.DataWriteGUID
}

// BlockSize is the payload block size in bytes.
func (d *Disk) BlockSize() int64 { return d.geo.blockSize }

// SectorSize is the logical sector size in bytes.
func (d *Disk) SectorSize() int64 { return d.geo.sectorSize }

// Flush has nothing pending: data, BAT entries, bitmaps and the header
// are written as each write happens.
func (d *Disk) Flush() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("vhdx %s: flush after close", d.f.Name())
	}
	return nil
}

// Close releases the file and the parent.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var perr error
	if d.parent != nil {
		perr = d.parent.Close()
	}
	if err := d.f.Close(); err != nil {
		return err
	}
	return perr
}
