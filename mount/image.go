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

	"strings"

	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/partition"
	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/detect"
	"github.com/offvm/offvm/volume"
)

// Options say how an image is opened.
type Options struct {
	// ReadOnly: nothing may change and nothing is written anywhere
	// (offvm mount --ro, inspect, ls): no lock, no recovery, no overlay.
	ReadOnly bool
	// ReadOnlyReason, when set, opens the image read-only for this reason
	// (the image is the parent of another one in the library).
	ReadOnlyReason string
	// HoldReader, with ReadOnly, takes qemu's reader lock for as long as
	// the image is open (offvm mount --ro): writers are refused while the
	// view serves the image from its caches. Without it a read-only open
	// takes no lock, so ls and inspect never stand in a writer's way.
	HoldReader bool
	// NoSecrets leaves SAM and SECURITY out of the registry.
	NoSecrets bool
	// TmpDir holds the overlay's changed blocks ("" = os.TempDir()).
	TmpDir string
	// Keys unlock encrypted partitions (--keys); nil holds none.
	Keys *keys.Set
	// VM is what the library's VM configurations say of this disk
	// (info.json's "vm"); nil when none names it.
	VM any
	// OpenFile, when set, reaches the image's host files instead of the
	// OS (a disk stored inside an OVA); such an image must be read-only.
	OpenFile func(path string, writable bool) (vdisk.File, error)
	// Format, when set, is the container format detect.Probe already found
	// for the file (library.Walk probes every image of a library): Open
	// does not probe it again.
	Format string
}

// Image is an open image.
type Image struct {
	Path string
	opts Options

	disk    vdisk.Disk   // what the engines read and write
	base    vdisk.Disk   // the container itself, opened read-only
	overlay *txn.Overlay // nil when read-only
	lock    *txn.ImageLock
	// readLock is the reader lock of a --ro mount (Options.HoldReader).
	readLock *txn.ImageLock
	table    *partition.Table

	// readOnly says why this image cannot be written ("" when it can).
	readOnly string

	mu   sync.Mutex
	vols map[int]*Volume

	secrets secrets // what --no-secrets refuses (secrets.go)
	lvOnce  sync.Once
	lvm     *logical
	layers  map[int]*unlocked // guarded by layerMu
	layerMu sync.Mutex

	regOnce sync.Once
	reg     *winreg.Registry
	regVol  *Volume
	regErr  error
}

// Volume is one file system of the image.
type Volume struct {
	Partition partition.Partition // Number 0 for a bare file system
	FSType    string              // "" when no file system was recognised
	FS        volume.FS           // nil until opened, or when opening failed
	Err       error               // why FS is nil
	// ReadOnly says why this file system cannot be written even when the
	// image can (a hibernated or dirty NTFS, an engine without writes).
	ReadOnly string
	// Layer describes the encryption between partition and file system
	// (BitLocker, LUKS); nil for a plain partition.
	Layer *LayerInfo
	// Dev is what the file system is read from: the partition's bytes,
	// decrypted when a layer was unlocked (raw/pN). nil while locked.
	Dev volume.Device
}

// Open opens the image at path: container, parents and partition table.
// File systems are opened on first use (see Volume).
func Open(path string, opts Options) (*Image, error) {
	if opts.Keys == nil {
		opts.Keys = defaultKeys.Load()
	}
	im := &Image{Path: path, opts: opts, vols: map[int]*Volume{}}
	if err := im.prepare(); err != nil {
		return nil, err
	}
	if opts.OpenFile == nil && opts.Format == "" {
		if f, err := detect.Probe(path); err == nil && f == "" {
			im.lock.Close()
			im.readLock.Close()
			return nil, fmt.Errorf("%s: %w", path, ErrNotImage)
		}
	}
	base, err := detect.Open(path, detect.Options{OpenFile: opts.OpenFile})
	if err != nil {
		im.lock.Close()
		im.readLock.Close()
		return nil, err
	}
	im.base, im.disk = base, base
	if im.readOnly == "" {
		im.readOnly = formatReadOnly(base)
	}
	if im.readOnly == "" {
		if im.overlay, err = txn.NewOverlay(base, opts.TmpDir); err != nil {
			im.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		im.disk = im.overlay
	}
	t, err := partition.Read(im.disk, im.disk.Size())
	if err != nil {
		im.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	im.table = t
	return im, nil
}

// OpenDisk opens d, the virtual disk of the image at path, read-only:
// no lock, no recovery, no overlay. The history uses it for an image's
// guest before and after a commit (the base disk, and the overlay over
// it) while the commit holds the lock. Close leaves d open.
func OpenDisk(path string, d vdisk.Disk) (*Image, error) {
	im := &Image{Path: path, opts: Options{ReadOnly: true, Keys: defaultKeys.Load()}, vols: map[int]*Volume{},
		readOnly: "a view of one commit"}
	im.base, im.disk = noClose{d}, noClose{d}
	t, err := partition.Read(im.disk, im.disk.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	im.table = t
	return im, nil
}

// noClose is a disk whose Close leaves the disk below open.
type noClose struct{ vdisk.Disk }

func (noClose) Close() error { return nil }

// prepare decides whether the image may be written, and if so takes its
// lock and finishes any commit a crash interrupted. A read-only open
// writes nothing, so it refuses an image with an unfinished commit rather
// than read it half-applied.
func (im *Image) prepare() error {
	switch {
	case im.opts.ReadOnly:
		im.readOnly = "mounted read-only (--ro)"
	case im.opts.ReadOnlyReason != "":
		im.readOnly = im.opts.ReadOnlyReason
	}
	if im.readOnly != "" {
		if pending(im.Path) {
			return fmt.Errorf("%s: an interrupted commit awaits recovery (run offvm check %s): %w", im.Path, im.Path, ErrPending)
		}
		im.holdReader()
		return nil
	}
	lock, err := txn.Lock(im.Path)
	if err != nil {
		if errors.Is(err, txn.ErrLocked) {
			im.readOnly = ReasonInUse + ": " + err.Error()
			if pending(im.Path) {
				return fmt.Errorf("%s: an interrupted commit awaits recovery and the image is in use: %w", im.Path, ErrPending)
			}
			return nil
		}
		return err
	}
	im.lock = lock
	if did, err := txn.Recover(im.Path); err != nil {
		lock.Close()
		return fmt.Errorf("%s: recovering an interrupted commit: %w", im.Path, err)
	} else if did {
		slog.Info("recovered an interrupted commit", "image", im.Path)
	}
	return nil
}

// holdReader takes the reader lock a --ro mount asks for. A writer that
// holds the image already (a running VM) or a file system without locks
// leaves the view without it, as before: reading needs no lock, and the
// log says why writers are not kept out.
func (im *Image) holdReader() {
	if !im.opts.ReadOnly || !im.opts.HoldReader {
		return
	}
	lock, err := txn.LockReader(im.Path)
	if err != nil {
		slog.Info("read-only view without a reader lock: writers are not kept out", "image", im.Path, "err", err)
		return
	}
	im.readLock = lock
}

// ErrNotImage means a file holds no recognisable disk: no container
// header, no partition table, no file system (a text file named .img).
var ErrNotImage = errors.New("not a disk image (no container header, partition table or file system)")

// ErrPending means an image holds an interrupted commit.
var ErrPending = errors.New("interrupted commit pending")

// formatReadOnly says why the container cannot be written ("" when it
// can): streamOptimized VMDK, internal snapshots, and the like.
func formatReadOnly(d vdisk.Disk) string {
	if r := d.Info().ReadOnly; r != "" && r != "opened read-only" && !strings.HasSuffix(r, "opened read-only") {
		return r
	}
	return ""
}

// WouldBeWritable says whether a writable open of this image could write
// it, and if not, why: what `offvm ls` shows for images it opened
// read-only. It only tests the image's lock bytes (it takes no lock, so a
// qemu starting at that moment never trips over it).
func (im *Image) WouldBeWritable() (bool, string) {
	if r := formatReadOnly(im.base); r != "" {
		return false, r
	}
	if im.lock != nil {
		return true, ""
	}
	if err := txn.Probe(im.Path); err != nil {
		return false, LockReason(err)
	}
	return true, ""
}

// Why an image cannot be written because of its lock: another program
// holds it, or its file system refuses locks (NFSv3 mounted without its
// lock manager: ENOLCK), and offvm never writes an image it cannot lock.
// Both are asked again whenever the image is listed (IsLockReason).
const (
	ReasonInUse  = "in use by another program"
	ReasonNoLock = "its file system refuses the image lock"
)

// LockReason is the read-only reason for an error of txn.Probe.
func LockReason(err error) string {
	if errors.Is(err, txn.ErrLocked) {
		return ReasonInUse + ": " + err.Error()
	}
	return ReasonNoLock + ": " + err.Error()
}

// IsLockReason tells a reason LockReason gave.
func IsLockReason(why string) bool {
	return strings.HasPrefix(why, ReasonInUse) || strings.HasPrefix(why, ReasonNoLock)
}

// Disk is the virtual disk as the engines see it.
func (im *Image) Disk() vdisk.Disk { return im.disk }

// Table is the partition table (Kind "" for a bare disk).
func (im *Image) Table() *partition.Table { return im.table }

// ReadOnlyReason says why the image cannot be written, "" when it can.
func (im *Image) ReadOnlyReason() string { return im.readOnly }

// Partitions lists the volumes: every partition of the table, or the
// whole disk as partition 0 when there is no table, then the LVM logical
// volumes found on them (numbered from 100, see lvm.go).
func (im *Image) Partitions() []partition.Partition {
	base := im.diskPartitions()
	return append(base[:len(base):len(base)], im.logicalVolumes().parts...)
}

func (im *Image) diskPartitions() []partition.Partition {
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
	var dev volume.Device = &window{disk: im.disk, start: part.Start, size: part.Size}
	lvDev, lvRO, isLV, err := im.openLV(n)
	if isLV && err != nil {
		v.FSType, v.Err = part.TypeID, err
		im.vols[n] = v
		return v, nil
	} else if isLV {
		dev = lvDev
	}
	if u := im.unlock(n, dev); u != nil {
		dev, v.Layer = u.dev, &u.info
		if u.err != nil || dev == nil {
			v.FSType = u.name
			if u.err != nil {
				v.Err = fmt.Errorf("%s partition %d: %w", im.Path, n, u.err)
				slog.Warn("encrypted volume not opened", "err", v.Err)
			}
			im.vols[n] = v
			return v, nil
		}
	}
	v.Dev = dev
	v.FSType = probeFS(dev)
	if v.FSType != "" {
		v.FS, v.Err = safeOpen(v.FSType, dev, im.readOnly != "")
		if v.Err != nil {
			v.Err = fmt.Errorf("%s partition %d (%s): %w", im.Path, n, v.FSType, v.Err)
			slog.Warn("volume failed to open", "err", v.Err)
		}
		v.ReadOnly = im.readOnly
		if v.ReadOnly == "" {
			v.ReadOnly = lvRO
		}
		if v.ReadOnly == "" && v.Layer != nil {
			v.ReadOnly = v.Layer.ReadOnly
		}
		if r, ok := v.FS.(interface{ ReadOnlyReason() string }); ok && v.ReadOnly == "" {
			v.ReadOnly = r.ReadOnlyReason()
		}
		if _, ok := v.FS.(volume.Writer); !ok && v.FS != nil && v.ReadOnly == "" {
			v.ReadOnly = v.FSType + " is read-only in offvm"
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

// Close releases the image, dropping uncommitted changes.
func (im *Image) Close() error {
	var errs []error
	if im.overlay != nil {
		errs = append(errs, im.overlay.Close()) // closes base too
	} else if im.base != nil {
		errs = append(errs, im.base.Close())
	}
	errs = append(errs, im.lock.Close(), im.readLock.Close())
	return errors.Join(errs...)
}
