// Package raw presents a plain file as a virtual disk, byte for byte.
package raw

import (
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

// Disk is a raw image: the host file is the virtual disk.
type Disk struct {
	f        vdisk.File
	size     int64
	writable bool
}

// Open presents f as a raw disk of its current length.
func Open(f vdisk.File, opts vdisk.Options) (*Disk, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("raw %s: %w", f.Name(), err)
	}
	return &Disk{f: f, size: size, writable: opts.Writable}, nil
}

func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		if off >= d.size {
			return 0, io.EOF
		}
		n, _ := d.ReadAt(p[:d.size-off], off)
		return n, io.EOF
	}
	n, err := d.f.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if !d.writable {
		return 0, vdisk.ErrReadOnly
	}
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		return 0, fmt.Errorf("raw %s: write at %d: %w", d.f.Name(), off, err)
	}
	return d.f.WriteAt(p, off)
}

func (d *Disk) Size() int64 { return d.size }

func (d *Disk) Info() vdisk.Info {
	ro := ""
	if !d.writable {
		ro = "opened read-only"
	}
	return vdisk.Info{Format: "raw", ReadOnly: ro}
}

func (d *Disk) Flush() error { return nil }
func (d *Disk) Close() error { return d.f.Close() }
