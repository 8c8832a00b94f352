// Package mount is one image end to end: the container (vdisk), the
// copy-on-write overlay, the partition table, and the file system engines on
// each partition, opened lazily. The FUSE tree, inspection and the patcher
// all reach an image through this package.
package mount

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/offvm/offvm/partition"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/detect"
	"github.com/offvm/offvm/volume"
)

// Options say how an image is opened.
type Options struct {
	// ReadOnly: nothing may change (offvm mount --ro, inspect, ls).
	ReadOnly bool
}

// Image is an open image.
type Image struct {
	Path string
	opts Options

	disk  vdisk.Disk // what the engines read and write
	base  vdisk.Disk // the container itself, opened read-only
	table *partition.Table

	// readOnly says why this image cannot be written ("" when it can).
	readOnly string

	mu   sync.Mutex
	vols map[int]*Volume
}

// Volume is one file system of the image.
type Volume struct {
	Partition partition.Partition // Number 0 for a bare file system
	FSType    string              // "" when no file system was recognised
	FS        volume.FS           // nil until opened, or when opening failed
	Err       error               // why FS is nil
}

// Open opens the image at path: container, parents and partition table.
// File systems are opened on first use (see Volume).
func Open(path string, opts Options) (*Image, error) {
	base, err := detect.Open(path, detect.Options{})
	if err != nil {
		return nil, err
	}
	im := &Image{Path: path, opts: opts, base: base, disk: base, vols: map[int]*Volume{}}
	im.readOnly = im.whyReadOnly()
	t, err := partition.Read(base, base.Size())
	if err != nil {
		base.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	im.table = t
	return im, nil
}

func (im *Image) whyReadOnly() string {
	switch {
	case im.opts.ReadOnly:
		return "mounted read-only (--ro)"
	case im.base.Info().ReadOnly != "" && im.base.Info().ReadOnly != "opened read-only":
		return im.base.Info().ReadOnly
	}
	// Writes reach images through the transaction layer, which this build
	// does not have yet.
	return "writing is not supported yet"
}

// Disk is the virtual disk as the engines see it.
func (im *Image) Disk() vdisk.Disk { return im.disk }

// Table is the partition table (Kind "" for a bare disk).
func (im *Image) Table() *partition.Table { return im.table }

// ReadOnlyReason says why the image cannot be written, "" when it can.
func (im *Image) ReadOnlyReason() string { return im.readOnly }

// Partitions lists the volumes: every partition of the table, or the
// whole disk as partition 0 when there is no table.
func (im *Image) Partitions() []partition.Partition {
	if im.table.Kind == "" {
		return []partition.Partition{{Number: 0, Type: "whole disk", Start: 0, Size: im.disk.Size()}}
	}
	return im.table.Partitions
}

// Volume returns partition n's file system, opening it on first use. A
// partition whose engine fails carries the error; it never panics the
// caller, whatever the bytes on disk.
func (im *Image) Volume(n int) (*Volume, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if v, ok := im.vols[n]; ok {
		return v, nil
	}
	var part *partition.Partition
	for _, p := range im.Partitions() {
		if p.Number == n {
			p := p
			part = &p
		}
	}
	if part == nil {
		return nil, fmt.Errorf("%s: no partition %d", im.Path, n)
	}
	v := &Volume{Partition: *part}
	dev := &window{disk: im.disk, start: part.Start, size: part.Size}
	v.FSType = probeFS(dev)
	if v.FSType != "" {
		v.FS, v.Err = safeOpen(v.FSType, dev, im.readOnly != "")
		if v.Err != nil {
			v.Err = fmt.Errorf("%s partition %d (%s): %w", im.Path, n, v.FSType, v.Err)
			slog.Warn("volume failed to open", "err", v.Err)
		}
	}
	im.vols[n] = v
	return v, nil
}

// safeOpen turns an engine's panic into an error: one bad partition must
// not take the daemon, and every other image, down with it.
func safeOpen(fsType string, dev volume.Device, ro bool) (fs volume.FS, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("engine panic", "fs", fsType, "panic", r, "stack", string(debug.Stack()))
			fs, err = nil, fmt.Errorf("%s engine failed on this volume: %v", fsType, r)
		}
	}()
	return openEngine(fsType, dev, ro)
}

// Volumes opens and returns every partition's volume, in number order.
func (im *Image) Volumes() []*Volume {
	parts := im.Partitions()
	out := make([]*Volume, 0, len(parts))
	for _, p := range parts {
		if v, err := im.Volume(p.Number); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition.Number < out[j].Partition.Number })
	return out
}

// Close releases the image.
func (im *Image) Close() error {
	return errors.Join(im.base.Close())
}
