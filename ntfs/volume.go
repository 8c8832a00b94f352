// Package ntfs reads and writes NTFS volumes in pure Go. A *Volume serves
// one volume on a volume.Device and implements volume.FS and volume.Writer.
package ntfs

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Options control how a volume is opened.
type Options struct {
	// ReadOnly refuses every write with EROFS.
	ReadOnly bool
}

// Volume is an open NTFS volume.
type Volume struct {
	dev      volume.Device
	geo      geometry
	clusters int64
	mftRuns  []run
	mftSize  int64
	up       *upcase
	cache    *cache
	label    string
	version  [2]byte
	roReason string

	mu        sync.RWMutex // readers share it; every write holds it alone
	w         *writeState  // nil until the first write
	statCache atomic.Pointer[volume.StatFS]
}

var (
	_ volume.FS        = (*Volume)(nil)
	_ volume.Writer    = (*Volume)(nil)
	_ volume.Linker    = (*Volume)(nil)
	_ volume.Symlinker = (*Volume)(nil)
	_ volume.Timer     = (*Volume)(nil)
	_ volume.Xattrer   = (*Volume)(nil)
)

// Open reads the boot sector, $MFT, $UpCase and $Volume of dev.
func Open(dev volume.Device, opts Options) (*Volume, error) {
	boot := make([]byte, 512)
	if dev.Size() < 512 {
		return nil, fmt.Errorf("ntfs: device of %d bytes is too small: %w", dev.Size(), syscall.EINVAL)
	}
	if _, err := dev.ReadAt(boot, 0); err != nil {
		return nil, fmt.Errorf("ntfs: reading boot sector: %w", syscall.EIO)
	}
	geo, err := parseBoot(boot, dev.Size())
	if err != nil {
		return nil, err
	}
	v := &Volume{dev: dev, geo: geo, clusters: geo.totalClusters(), cache: newCache(geo.recordSize)}
	if err := v.loadMFT(); err != nil {
		return nil, err
	}
	v.up = v.loadUpcase()
	if err := v.loadVolumeInfo(); err != nil {
		return nil, err
	}
	if _, err := v.loadInode(recRoot); err != nil {
		return nil, fmt.Errorf("ntfs: root directory: %w", err)
	}
	switch {
	case opts.ReadOnly:
		v.roReason = "opened read-only"
	case v.roReason == "":
		v.roReason = v.checkHibernation()
	}
	return v, nil
}

// ReadOnlyReason says why writes are refused; "" when the volume is writable.
func (v *Volume) ReadOnlyReason() string { return v.roReason }

// loadMFT finds the $MFT data runs, following its attribute list when
// $MFT is so fragmented that its runlist spans extension records.
func (v *Volume) loadMFT() error {
	cs := v.geo.clusterSize
	buf := make([]byte, v.geo.recordSize)
	if _, err := v.dev.ReadAt(buf, v.geo.mftLCN*cs); err != nil {
		return fmt.Errorf("ntfs: reading $MFT record: %w", syscall.EIO)
	}
	r, err := decodeRecord(buf, recMFT)
	if err != nil {
		return fmt.Errorf("ntfs: $MFT: %w", err)
	}
	attrs, err := parseAttrs(r, v.clusters)
	if err != nil {
		return err
	}
	var list []byte
	for i := range attrs {
		a := &attrs[i]
		switch {
		case a.typ == atData && a.name == "" && !a.resident:
			if a.startVCN == 0 {
				v.mftSize = a.dataSize
			}
			v.mftRuns = append(v.mftRuns, a.runs...)
		case a.typ == atAttrList:
			if list, err = v.attrValue(a, 1<<20); err != nil {
				return fmt.Errorf("ntfs: $MFT attribute list: %w", err)
			}
		}
	}
	sort.Slice(v.mftRuns, func(i, j int) bool { return v.mftRuns[i].vcn < v.mftRuns[j].vcn })
	if v.mftSize < int64(v.geo.recordSize)*firstUser || len(v.mftRuns) == 0 {
		return fmt.Errorf("ntfs: $MFT has no usable $DATA (%d bytes): %w", v.mftSize, syscall.EIO)
	}
	if err := v.mftExtents(list); err != nil {
		return err
	}
	v.mftRuns = mergeRuns(v.mftRuns)
	return nil
}

// mftExtents adds the $MFT data extents held in extension records, in
// VCN order so that each extension record is reachable when it is read.
func (v *Volume) mftExtents(list []byte) error {
	type ext struct {
		vcn int64
		ref uint64
	}
	var exts []ext
	for off := 0; off+0x1a <= len(list); {
		l := int(binary.LittleEndian.Uint16(list[off+4:]))
		if l < 0x1a || off+l > len(list) {
			return fmt.Errorf("ntfs: $MFT attribute list entry at %d: %w", off, syscall.EIO)
		}
		typ := binary.LittleEndian.Uint32(list[off:])
		ref := binary.LittleEndian.Uint64(list[off+0x10:]) & refNumMask
		if typ == atData && ref != recMFT && list[off+6] == 0 {
			exts = append(exts, ext{int64(binary.LittleEndian.Uint64(list[off+8:])), ref})
		}
		off += l
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i].vcn < exts[j].vcn })
	for _, e := range exts {
		v.mftRuns = mergeRuns(v.mftRuns)
		r, err := v.readRecord(e.ref)
		if err != nil {
			return fmt.Errorf("ntfs: $MFT extension: %w", err)
		}
		attrs, err := parseAttrs(r, v.clusters)
		if err != nil {
			return err
		}
		for _, a := range attrs {
			if a.typ == atData && a.name == "" && !a.resident && a.startVCN == e.vcn {
				v.mftRuns = append(v.mftRuns, a.runs...)
			}
		}
		sort.Slice(v.mftRuns, func(i, j int) bool { return v.mftRuns[i].vcn < v.mftRuns[j].vcn })
	}
	return nil
}

// Volume flags in $VOLUME_INFORMATION.
const volDirty = 0x0001

func (v *Volume) loadVolumeInfo() error {
	in, err := v.loadInode(recVolume)
	if err != nil {
		return fmt.Errorf("ntfs: $Volume: %w", err)
	}
	if s := in.find(atVolumeName, ""); s != nil && s.resident {
		v.label = decodeName(s.value)
	}
	if s := in.find(atVolumeInfo, ""); s != nil && s.resident && len(s.value) >= 12 {
		v.version = [2]byte{s.value[8], s.value[9]}
		if binary.LittleEndian.Uint16(s.value[10:])&volDirty != 0 {
			v.roReason = "the NTFS volume is marked dirty (run chkdsk in Windows)"
		}
	}
	return nil
}
