package lvm

import (
	"fmt"
	"slices"
	"sort"
)

// VG is a volume group as its newest metadata describes it.
type VG struct {
	Name       string
	ID         string
	Seqno      int64
	ExtentSize int64 // bytes
	PVs        []PV
	LVs        []*LV // visible LVs, sorted by name
}

// PV is one physical volume of a group.
type PV struct {
	Name    string // "pv0", as the metadata names it
	UUID    string
	PEStart int64 // bytes from the start of the PV
	PECount int64
}

// LV is a logical volume.
type LV struct {
	VG   string
	Name string
	ID   string
	// Type is "linear" or "striped" for the LVs offvm maps, or what LVM
	// calls the others: "thin", "thin-pool", "snapshot", "raid1", "cache"...
	Type string
	Size int64 // bytes
	// Unsupported says why the LV cannot be opened ("" when it can).
	Unsupported string
	// ReadOnly says why an openable LV may not be written (the origin of
	// a snapshot: the snapshot's copy-on-write store would go stale).
	ReadOnly string
	segs     []segment
}

type segment struct {
	start, count int64 // in extents, within the LV
	typ          string
	stripeSize   int64 // bytes; 0 for one stripe
	stripes      []stripe
}

type stripe struct {
	pv      string // the PV's name in the metadata
	startPE int64
}

// parseVG turns a metadata text into a VG.
func parseVG(text []byte) (*VG, error) {
	top, err := parseText(text)
	if err != nil {
		return nil, err
	}
	var name string
	for _, k := range top.keys {
		if top.vals[k].section != nil {
			name = k
			break
		}
	}
	s := top.sub(name)
	if s == nil {
		return nil, fmt.Errorf("no volume group section: %w", ErrCorrupt)
	}
	vg := &VG{Name: name, ID: s.str("id")}
	vg.Seqno, _ = s.num("seqno")
	es, ok := s.num("extent_size")
	if !ok || es <= 0 || es > 1<<32 {
		return nil, fmt.Errorf("vg %s: extent_size %d: %w", name, es, ErrCorrupt)
	}
	vg.ExtentSize = es * sectorSize
	if pvs := s.sub("physical_volumes"); pvs != nil {
		for _, k := range pvs.keys {
			p := pvs.sub(k)
			if p == nil {
				continue
			}
			st, _ := p.num("pe_start")
			cnt, _ := p.num("pe_count")
			if st < 0 || cnt < 0 || st > 1<<50 || cnt > 1<<40 {
				return nil, fmt.Errorf("vg %s pv %s: pe_start %d pe_count %d: %w", name, k, st, cnt, ErrCorrupt)
			}
			vg.PVs = append(vg.PVs, PV{Name: k, UUID: p.str("id"), PEStart: st * sectorSize, PECount: cnt})
		}
	}
	lvs := s.sub("logical_volumes")
	all := map[string]*LV{}
	if lvs != nil {
		for _, k := range lvs.keys {
			l := lvs.sub(k)
			if l == nil {
				continue
			}
			lv, err := vg.parseLV(k, l)
			if err != nil {
				return nil, err
			}
			all[k] = lv
			if slices.Contains(l.strs("status"), "VISIBLE") {
				vg.LVs = append(vg.LVs, lv)
			}
		}
	}
	for _, k := range lvs.keysOrNil() { // a snapshot may precede its LVs
		if l := lvs.sub(k); l != nil {
			markSnapshot(l, all)
		}
	}
	sort.Slice(vg.LVs, func(i, j int) bool { return vg.LVs[i].Name < vg.LVs[j].Name })
	return vg, nil
}

func (s *section) keysOrNil() []string {
	if s == nil {
		return nil
	}
	return s.keys
}

// markSnapshot handles LVM2's old-style snapshots: a hidden LV with a
// "snapshot" segment names the origin and the visible LV holding the
// copy-on-write store. The store is no file system, and the origin must
// not change behind the snapshot's back.
func markSnapshot(l *section, all map[string]*LV) {
	seg := l.sub("segment1")
	if seg == nil || seg.str("type") != "snapshot" {
		return
	}
	if cow := all[seg.str("cow_store")]; cow != nil {
		cow.Type, cow.Unsupported = "snapshot", "old-style LVM snapshot of "+seg.str("origin")+": its copy-on-write store is not mapped by offvm"
	}
	if o := all[seg.str("origin")]; o != nil && o.Unsupported == "" {
		o.ReadOnly = "origin of an LVM snapshot: writing it would leave the snapshot stale"
	}
}

func (vg *VG) parseLV(name string, l *section) (*LV, error) {
	lv := &LV{VG: vg.Name, Name: name, ID: l.str("id")}
	n, _ := l.num("segment_count")
	if n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("lv %s/%s: segment_count %d: %w", vg.Name, name, n, ErrCorrupt)
	}
	var end int64
	for i := int64(1); i <= n; i++ {
		s := l.sub(fmt.Sprintf("segment%d", i))
		if s == nil {
			return nil, fmt.Errorf("lv %s/%s: segment%d missing: %w", vg.Name, name, i, ErrCorrupt)
		}
		seg, err := vg.parseSegment(s)
		if err != nil {
			return nil, fmt.Errorf("lv %s/%s segment%d: %w", vg.Name, name, i, err)
		}
		if seg.start != end {
			return nil, fmt.Errorf("lv %s/%s segment%d starts at extent %d, not %d: %w", vg.Name, name, i, seg.start, end, ErrCorrupt)
		}
		end += seg.count
		lv.segs = append(lv.segs, seg)
		t := seg.typ
		if t == "striped" && len(seg.stripes) == 1 {
			t = "linear"
		}
		switch {
		case lv.Type == "":
			lv.Type = t
		case lv.Type != t && (lv.Type == "linear" || lv.Type == "striped") && (t == "linear" || t == "striped"):
			lv.Type = "striped"
		}
		if seg.typ != "striped" && lv.Unsupported == "" {
			lv.Unsupported = fmt.Sprintf("%s logical volumes are not mapped by offvm (only linear and striped)", seg.typ)
		}
	}
	if end > 1<<40/max(vg.ExtentSize/sectorSize, 1) {
		return nil, fmt.Errorf("lv %s/%s: %d extents: %w", vg.Name, name, end, ErrCorrupt)
	}
	lv.Size = end * vg.ExtentSize
	if lv.Type == "" {
		lv.Type, lv.Unsupported = "empty", "logical volume without segments"
	}
	return lv, nil
}

func (vg *VG) parseSegment(s *section) (segment, error) {
	seg := segment{typ: s.str("type")}
	seg.start, _ = s.num("start_extent")
	seg.count, _ = s.num("extent_count")
	if seg.start < 0 || seg.count <= 0 || seg.count > 1<<40 {
		return seg, fmt.Errorf("extents %d+%d: %w", seg.start, seg.count, ErrCorrupt)
	}
	if seg.typ != "striped" {
		return seg, nil
	}
	v, _ := s.get("stripes")
	if len(v.list) == 0 || len(v.list)%2 != 0 {
		return seg, fmt.Errorf("stripes list of %d items: %w", len(v.list), ErrCorrupt)
	}
	for i := 0; i < len(v.list); i += 2 {
		pe := v.list[i+1]
		if v.list[i].isNum || !pe.isNum || pe.num < 0 {
			return seg, fmt.Errorf("stripe %d: %w", i/2, ErrCorrupt)
		}
		seg.stripes = append(seg.stripes, stripe{pv: v.list[i].str, startPE: pe.num})
	}
	n := int64(len(seg.stripes))
	if n > 1 {
		ss, _ := s.num("stripe_size")
		seg.stripeSize = ss * sectorSize
		if ss <= 0 || ss&(ss-1) != 0 || seg.stripeSize > vg.ExtentSize || seg.count%n != 0 {
			return seg, fmt.Errorf("stripe_size %d over %d stripes of %d extents: %w", ss, n, seg.count, ErrCorrupt)
		}
	}
	// each stripe covers count/n extents of its PV
	for _, st := range seg.stripes {
		pv := vg.pv(st.pv)
		if pv == nil {
			return seg, fmt.Errorf("stripe on unknown pv %q: %w", st.pv, ErrCorrupt)
		}
		if st.startPE+seg.count/n > pv.PECount {
			return seg, fmt.Errorf("stripe on %s extents %d+%d beyond its %d: %w", st.pv, st.startPE, seg.count/n, pv.PECount, ErrCorrupt)
		}
	}
	return seg, nil
}

func (vg *VG) pv(name string) *PV {
	for i := range vg.PVs {
		if vg.PVs[i].Name == name {
			return &vg.PVs[i]
		}
	}
	return nil
}
