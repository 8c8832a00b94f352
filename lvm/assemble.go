package lvm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/offvm/offvm/volume"
)

// Disk is a device that may be a PV, with a name for messages ("p2").
type Disk struct {
	Name string
	Dev  volume.Device
}

// Group is an assembled volume group: its metadata and the PVs found.
type Group struct {
	VG  *VG
	pvs map[string]volume.Device // by PV name in the metadata
	// Missing names the PVs (by UUID) the metadata lists but no disk holds.
	Missing []string
}

// Assemble finds the PVs among disks and assembles their groups from
// the newest metadata (highest seqno) any of their PVs carries. Disks
// without a label are skipped; damaged PVs are reported in errs and
// left out.
func Assemble(disks []Disk) (groups []*Group, errs []error) {
	byUUID := map[string]volume.Device{}
	newest := map[string]*VG{}
	for _, d := range disks {
		l, err := ReadLabel(d.Dev)
		if errors.Is(err, ErrNotPV) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lvm: %s: %w", d.Name, err))
			continue
		}
		byUUID[l.UUID] = d.Dev
		if l.Metadata == nil {
			continue
		}
		vg, err := parseVG(l.Metadata)
		if err != nil {
			errs = append(errs, fmt.Errorf("lvm: %s: %w", d.Name, err))
			continue
		}
		if o := newest[vg.ID]; o == nil || vg.Seqno > o.Seqno {
			newest[vg.ID] = vg
		}
	}
	for _, vg := range newest {
		g := &Group{VG: vg, pvs: map[string]volume.Device{}}
		for _, pv := range vg.PVs {
			if dev, ok := byUUID[pv.UUID]; ok {
				g.pvs[pv.Name] = dev
			} else {
				g.Missing = append(g.Missing, pv.UUID)
			}
		}
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].VG.Name < groups[j].VG.Name })
	return groups, errs
}

// Open maps lv onto its PVs. readOnly gives a device that refuses writes.
func (g *Group) Open(lv *LV) (volume.Device, error) {
	if lv.Unsupported != "" {
		return nil, fmt.Errorf("lvm: %s/%s: %s", lv.VG, lv.Name, lv.Unsupported)
	}
	d := &lvDevice{lv: lv, extent: g.VG.ExtentSize}
	for _, s := range lv.segs {
		ms := mappedSeg{segment: s}
		for _, st := range s.stripes {
			dev, ok := g.pvs[st.pv]
			if !ok {
				return nil, fmt.Errorf("lvm: %s/%s: physical volume %s (%s) is not in this image", lv.VG, lv.Name, st.pv, g.VG.pv(st.pv).UUID)
			}
			base := g.VG.pv(st.pv).PEStart + st.startPE*g.VG.ExtentSize
			if end := base + s.count/int64(len(s.stripes))*g.VG.ExtentSize; end > dev.Size() {
				return nil, fmt.Errorf("lvm: %s/%s: extents end at byte %d of %s, beyond its %d bytes: %w", lv.VG, lv.Name, end, st.pv, dev.Size(), ErrCorrupt)
			}
			ms.devs = append(ms.devs, dev)
			ms.bases = append(ms.bases, base)
		}
		d.segs = append(d.segs, ms)
	}
	return d, nil
}
