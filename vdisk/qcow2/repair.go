package qcow2

import (
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// offIncompatible is the header offset of incompatible_features (v3).
const offIncompatible = 72

// repairRefcounts rebuilds the refcounts of an image left dirty (lazy
// refcounts, writer interrupted), as qemu does before writing to one: it
// counts every cluster the active tables reach, writes a fresh refcount
// structure at the end of the file, fixes the copied flags, and clears the
// dirty bit at the next flush. The old structure is left unreferenced.
// It costs one pass over the metadata, once, and only for dirty images.
func (d *Disk) repairRefcounts() error {
	counts, err := d.countClusters()
	if err != nil {
		return err
	}
	if err := d.fixCopiedFlags(counts); err != nil {
		return err
	}
	return d.newRefcountStructure(counts)
}

// countClusters counts the references to each host cluster: the header,
// the L1 table, the L2 tables and the data they map.
func (d *Disk) countClusters() ([]uint64, error) {
	counts := make([]uint64, d.end/d.cs)
	ref := func(off, length int64) error {
		if off < 0 || length <= 0 || off+length > d.end {
			return fmt.Errorf("qcow2 %s: repairing refcounts: %d bytes at %#x lie outside the file: %w", d.name, length, off, vdisk.ErrCorrupt)
		}
		for c := off / d.cs; c <= (off+length-1)/d.cs; c++ {
			counts[c]++
		}
		return nil
	}
	if err := ref(0, d.cs); err != nil {
		return nil, err
	}
	if len(d.l1.raw) > 0 {
		if err := ref(d.l1.off, int64(len(d.l1.raw))); err != nil {
			return nil, err
		}
	}
	for l1i := int64(0); l1i < int64(len(d.l1.raw)/8); l1i++ {
		l2off := int64(d.l1.u64(l1i) & offsetMask)
		if l2off == 0 {
			continue
		}
		t, err := d.l2Table(l2off)
		if err != nil {
			return nil, err
		}
		if err := ref(l2off, d.cs); err != nil {
			return nil, err
		}
		for i := int64(0); i < d.l2n; i++ {
			e := t.u64(i)
			k, host, err := d.classify(e)
			switch {
			case err != nil:
				return nil, err
			case k == kCompressed:
				first, last := d.compressedClusters(e)
				err = ref(first*d.cs, (last-first+1)*d.cs)
			case host != 0:
				err = ref(host, d.cs)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return counts, nil
}

// fixCopiedFlags makes bit 63 of every L1 and standard L2 entry say
// whether the cluster's count is exactly one.
func (d *Disk) fixCopiedFlags(counts []uint64) error {
	fix := func(e uint64, host int64) uint64 {
		if counts[host/d.cs] == 1 {
			return e | flagCopied
		}
		return e &^ flagCopied
	}
	for l1i := int64(0); l1i < int64(len(d.l1.raw)/8); l1i++ {
		l1e := d.l1.u64(l1i)
		l2off := int64(l1e & offsetMask)
		if l2off == 0 {
			continue
		}
		if v := fix(l1e, l2off); v != l1e {
			d.l1.setU64(l1i, v)
		}
		t, err := d.l2Table(l2off)
		if err != nil {
			return err
		}
		for i := int64(0); i < d.l2n; i++ {
			e := t.u64(i)
			host := int64(e & offsetMask)
			if e&flagCompressed != 0 || host == 0 {
				continue
			}
			if v := fix(e, host); v != e {
				t.setU64(i, v)
				d.l2.keep(t)
			}
		}
	}
	return nil
}

// newRefcountStructure lays out refcount blocks and a table covering every
// cluster up to and including themselves, at the end of the file.
func (d *Disk) newRefcountStructure(counts []uint64) error {
	rc := d.rc
	used := d.end / d.cs
	var blocks, tclusters int64
	for {
		total := used + blocks + tclusters
		nb := (total + rc.perBlock - 1) / rc.perBlock
		nt := (nb*8 + d.cs - 1) / d.cs
		if nb == blocks && nt == tclusters {
			break
		}
		blocks, tclusters = nb, nt
	}
	limit := uint64(1)<<rc.bits - 1
	if rc.bits == 64 {
		limit = ^uint64(0)
	}
	tableOff := d.end + blocks*d.cs
	rt := newTable(tableOff, int(tclusters*d.cs), 8)
	rc.blocks = map[int64]*table{}
	for b := int64(0); b < blocks; b++ {
		bt := newTable(d.end+b*d.cs, int(d.cs), max(1, rc.bits/8))
		rt.setU64(b, uint64(bt.off))
		for i := int64(0); i < rc.perBlock; i++ {
			c := b*rc.perBlock + i
			var v uint64
			switch {
			case c < used:
				v = counts[c]
			case c < used+blocks+tclusters:
				v = 1 // the new structure itself
			}
			if v > limit {
				return fmt.Errorf("qcow2 %s: repairing refcounts: host cluster %#x has %d references, more than %d bits hold: %w", d.name, c*d.cs, v, rc.bits, vdisk.ErrUnsupported)
			}
			refSet(bt, rc.bits, i, v)
		}
		rc.blocks[bt.off] = bt
	}
	rc.table = rt
	d.end += (blocks + tclusters) * d.cs
	d.h.IncompatibleFeatures &^= incDirty
	d.hdrDirty = true
	return nil
}
