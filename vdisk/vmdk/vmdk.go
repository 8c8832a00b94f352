// Package vmdk presents VMware virtual disks (VMDK) as a vdisk.Disk:
// monolithicSparse, twoGbMaxExtentSparse, monolithicFlat, twoGbMaxExtentFlat
// (read and write) and streamOptimized (read-only), with parents named by
// parentFileNameHint.
//
// The layout follows VMware's "Virtual Disk Format 5.0" and libyal's
// "VMWare Virtual Disk Format (VMDK)". Behaviour worth knowing:
//
//   - A file starting with "KDMV" is one sparse extent; as in qemu, its
//     header gives the extent and its embedded descriptor only the create
//     type, content IDs and parent. Any other file is a text descriptor
//     whose extents (relative to its directory) are opened with opts.Open.
//   - A child refuses a parent whose CID differs from its parentCID.
//   - New grains (and grain tables, for empty directory entries) go at the
//     end of the extent file; table and directory entries changed are
//     written by Flush to the primary and the redundant copies. The first
//     Flush after a write gives the descriptor a new CID, as VMware and
//     qemu do.
//   - Compressed grains (streamOptimized) are read-only.
package vmdk

import (
	"bytes"
	"encoding/binary"
	"io"
	"regexp"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// Disk is an open VMDK image: the descriptor the user named and its extents.
type Disk struct {
	mu      sync.RWMutex
	f       vdisk.File
	name    string
	desc    *descriptor // nil for a lone sparse extent without descriptor
	descAt  int64       // offset of the descriptor text in f
	extents []*extent
	size    int64
	files   []vdisk.File // closed by Close, f included

	parent     vdisk.Disk
	parentPath string

	variant  string
	readOnly string
	grains   grainCache
	cidDirty bool // written since open: the descriptor gets a new CID
	cidDone  bool // the new CID is written
}

var createTypeHint = regexp.MustCompile(`createType\s*=`)

// Match reports whether f starts with a sparse extent header or holds a
// text descriptor.
func Match(f vdisk.File) bool {
	buf := make([]byte, 1024)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return false
	}
	buf = buf[:n]
	if n >= 4 {
		if m := binary.LittleEndian.Uint32(buf); m == magicKDMV || m == magicCOWD {
			return true
		}
	}
	if size, err := f.Size(); err != nil || size > maxDescriptor {
		return false
	}
	return bytes.Contains(buf, []byte("# Disk DescriptorFile")) || createTypeHint.Match(buf)
}

func (d *Disk) Size() int64 { return d.size }

func (d *Disk) Info() vdisk.Info {
	return vdisk.Info{Format: "vmdk", Variant: d.variant, Parent: d.parentPath, ReadOnly: d.readOnly}
}

// Close flushes metadata, then closes the parent and every host file.
func (d *Disk) Close() error {
	err := d.Flush()
	if d.parent != nil {
		if e := d.parent.Close(); err == nil {
			err = e
		}
		d.parent = nil
	}
	for _, f := range d.files {
		if e := f.Close(); err == nil {
			err = e
		}
	}
	d.files = nil
	return err
}
