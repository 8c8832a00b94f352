// Package qcow2 reads and writes QEMU copy-on-write images, versions 2 and 3
// (QEMU's docs/interop/qcow2.txt): two-level L1/L2 cluster tables, zero and
// compressed (deflate or zstd) clusters, backing files of any format, and
// refcounts kept exact on every write so that `qemu-img check` finds neither
// errors nor leaks.
//
// Writes allocate at the end of the host file and never reuse freed space;
// metadata (refcount blocks and table, L2 and L1 entries, header fields) is
// held in memory and written at Flush, entry by entry, so a commit costs what
// it changed. Clusters and L2 tables an internal snapshot shares (refcount
// above one) are copied before they are written. An image left dirty by
// lazy refcounts gets its refcounts rebuilt on the first write.
//
// Refused: encryption, external data files, extended L2 entries. Read-only:
// the corrupt bit, persistent bitmaps, a dirty image with snapshots.
package qcow2

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// Disk is an open qcow2 image.
type Disk struct {
	f        vdisk.File
	name     string
	h        *header
	cs       int64 // cluster size
	cbits    uint
	l2n      int64 // entries per L2 table
	size     int64 // virtual size
	readOnly string

	parent     vdisk.Disk
	parentPath string
	parentSize int64

	// mu: readers share it; writers, Flush and Close hold it exclusively.
	mu       sync.RWMutex
	l1       *table
	l2       l2Cache
	l2s      l2Cache // slices of L2 tables, by host offset, when read-only
	around   window  // host windows already asked for (read-only disks)
	zc       zCache
	end      int64 // cluster-aligned end of allocated host space
	fileSize int64
	rc       *refcounts // nil until the first write
	hdrDirty bool
	closed   bool
}

// Match reports whether f starts with the qcow magic and a version this
// package knows.
func Match(f vdisk.File) bool {
	var b [8]byte
	if n, _ := f.ReadAt(b[:], 0); n < len(b) {
		return false
	}
	return bytes.Equal(b[:4], magic) && b[4] == 0 && b[5] == 0 && b[6] == 0 && (b[7] == 2 || b[7] == 3)
}

// Open presents the qcow2 image in f as a virtual disk. A backing file is
// opened through opts.OpenParent.
func Open(f vdisk.File, opts vdisk.Options) (vdisk.Disk, error) {
	d, err := open(f, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func open(f vdisk.File, opts vdisk.Options) (*Disk, error) {
	fileSize, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("qcow2 %s: %w", f.Name(), err)
	}
	h, err := readHeader(f, fileSize)
	if err != nil {
		return nil, err
	}
	d := &Disk{
		f: f, name: f.Name(), h: h,
		cs: h.clusterSize, cbits: uint(h.ClusterBits), l2n: h.clusterSize / 8,
		size: int64(h.Size), fileSize: fileSize,
		end: roundUp(fileSize, h.clusterSize),
	}
	d.l2.init(d.cs)
	d.l2s.init(min(l2SliceBytes, d.cs))
	d.readOnly = d.whyReadOnly(opts.Writable)
	if d.readOnly != "" {
		d.around.adviseHead(f, int64(h.L1TableOffset), fileSize)
	}
	if d.l1, err = d.readTable(int64(h.L1TableOffset), int64(h.L1Size)*8); err != nil {
		return nil, fmt.Errorf("qcow2 %s: L1 table: %w", d.name, err)
	}
	if err := d.openBacking(opts); err != nil {
		return nil, err
	}
	return d, nil
}

// whyReadOnly says why writes must be refused, "" when they are allowed.
func (d *Disk) whyReadOnly(writable bool) string {
	h := d.h
	switch {
	case !writable:
		return "opened read-only"
	case h.IncompatibleFeatures&incCorrupt != 0:
		return "the image's corrupt bit is set (repair it with qemu-img check -r all)"
	case h.NbSnapshots != 0 && h.IncompatibleFeatures&incDirty != 0:
		return fmt.Sprintf("the image's dirty bit is set and it has %d internal snapshot(s): repair its refcounts with qemu-img check -r all", h.NbSnapshots)
	case h.hasBitmaps || h.AutoclearFeatures&autoclearBitmaps != 0:
		return "the image has persistent dirty bitmaps, which a write would invalidate"
	}
	return ""
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

func (d *Disk) Size() int64 { return d.size }

func (d *Disk) Info() vdisk.Info {
	return vdisk.Info{
		Format:   "qcow2",
		Variant:  fmt.Sprintf("v%d", d.h.Version),
		Parent:   d.parentPath,
		ReadOnly: d.readOnly,
	}
}

// Close flushes metadata and closes the host file and the backing disk.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	err := d.flushLocked()
	d.closed = true
	if d.parent != nil {
		if perr := d.parent.Close(); err == nil {
			err = perr
		}
	}
	if ferr := d.f.Close(); err == nil {
		err = ferr
	}
	return err
}

// readHost reads host bytes; a short read at end of file reads as zeros
// (the tail of a last cluster qemu never wrote).
func (d *Disk) readHost(p []byte, off int64) error {
	if d.readOnly != "" {
		d.around.advise(d.f, off, int64(len(p)))
	}
	n, err := d.f.ReadAt(p, off)
	if err == io.EOF || (err == nil && n < len(p)) {
		clear(p[n:])
		return nil
	}
	if err != nil {
		return fmt.Errorf("qcow2 %s: read at %#x: %w", d.name, off, err)
	}
	return nil
}

// writeHost writes host bytes and tracks the file's growth.
func (d *Disk) writeHost(p []byte, off int64) error {
	if _, err := d.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("qcow2 %s: write at %#x: %w", d.name, off, err)
	}
	d.fileSize = max(d.fileSize, off+int64(len(p)))
	return nil
}
