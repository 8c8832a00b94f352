// Package vhd reads and writes Microsoft Virtual Hard Disk (VHD) images:
// fixed, dynamic and differencing, as described in Microsoft's "Virtual Hard
// Disk Image Format Specification" and libyal's notes on it.
//
// A fixed image is the disk followed by a 512-byte footer. Dynamic and
// differencing images keep a copy of the footer at offset 0, a dynamic
// header, a block allocation table (BAT) and blocks, each a sector bitmap
// followed by data; the footer ends the file. New blocks are appended where
// the footer was and the footer moves to the new end. A sector whose
// bitmap bit is clear is read from the parent in a differencing image and
// as zeros in a dynamic one (as the spec and libvhdi have it; qemu ignores
// the bitmap, which makes no difference for blocks qemu or Windows wrote).
// A write sets the bits of the sectors it covers, and only those, merging
// the parent's bytes (or zeros) into a sector it covers in part.
//
// Metadata updates (BAT entries, bitmap bytes, the moved footer) are written
// as each write needs them, so Flush has nothing left to do and the cost of
// a commit follows the bytes changed.
package vhd

import (
	"fmt"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

const unusedEntry = ^uint32(0)

// Disk is an open VHD image.
type Disk struct {
	f        vdisk.File
	name     string
	ft       footer
	ftRaw    []byte // the valid footer, as written to the end and to offset 0
	size     int64
	variant  string
	writable bool
	roReason string

	// Dynamic and differencing images.
	hdr        header
	batOff     int64
	bat        []uint32
	blockSize  int64
	bitmapSize int64
	// end is where the footer sits and the next block goes.
	end int64
	// copyStale says the footer copy at offset 0 differs from ftRaw and is
	// to be rewritten with the next metadata update.
	copyStale bool
	// problems is damage worked around at open (see vdisk.Info).
	problems []string

	parent     vdisk.Disk
	parentPath string

	// mu: readers share it, writers hold it alone (writes change the BAT,
	// bitmaps and end).
	mu      sync.RWMutex
	bitmaps bitmapCache
	closed  bool
}

var _ vdisk.Disk = (*Disk)(nil)

func (d *Disk) Size() int64 { return d.size }

func (d *Disk) Info() vdisk.Info {
	return vdisk.Info{Format: "vhd", Variant: d.variant, Parent: d.parentPath, ReadOnly: d.roReason, Problems: d.problems}
}

// UniqueID is the image's identifier; a differencing child records its
// parent's, and checks it when the parent is a VHD.
func (d *Disk) UniqueID() [16]byte { return d.ft.UniqueID }

// Flush has nothing to do: every metadata change is written by the
// WriteAt that makes it.
func (d *Disk) Flush() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return fmt.Errorf("vhd %s: flush after close", d.name)
	}
	return nil
}

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
		return fmt.Errorf("vhd %s: close: %w", d.name, err)
	}
	if perr != nil {
		return fmt.Errorf("vhd %s: closing parent %s: %w", d.name, d.parentPath, perr)
	}
	return nil
}
