package ntfs

import (
	"errors"
	"fmt"
	"syscall"
)

// maxResident is the largest value kept inside the record; larger data
// goes to clusters (Windows moves data out well before the record fills).
func (v *Volume) maxResident() int { return v.geo.recordSize / 2 }

// dataAttr locates a stream's attribute in the base record for editing.
// Streams of files with an attribute list are edited through op.openStream
// (split_stream.go), which lays their extents out over several records.
type dataAttr struct {
	r    *record
	off  int // -1 when the stream does not exist yet
	name string
	s    *stream
	o    *op         // set by op.openStream: the stream may then span records
	sp   *splitState // non-nil when the file has an attribute list
	typ  uint32      // attribute type: 0 is $DATA; index editors use $INDEX_ALLOCATION and $BITMAP
}

// attrType is the type of the attribute d edits.
func (d *dataAttr) attrType() uint32 {
	if d.typ == 0 {
		return atData
	}
	return d.typ
}

// relocate finds the attribute again in its record: edits of other
// attributes since it was opened may have moved it.
func (d *dataAttr) relocate() {
	if d.sp == nil {
		d.off = d.r.findAttr(d.attrType(), d.name, false)
	}
}

func (v *Volume) openData(r *record, name string) (*dataAttr, error) {
	return v.openAttrOf(r, atData, name)
}

// openAttrOf opens attribute typ:name of base record r (no attribute list).
func (v *Volume) openAttrOf(r *record, typ uint32, name string) (*dataAttr, error) {
	d := &dataAttr{r: r, off: r.findAttr(typ, name, false), name: name, typ: typ}
	if d.off < 0 {
		if r.findAttr(atAttrList, "", false) >= 0 {
			return nil, fmt.Errorf("ntfs: MFT record %d: stream %q lives in an extension record; changing it is not supported: %w", r.num, name, syscall.EOPNOTSUPP)
		}
		d.s = &stream{typ: typ, name: name, resident: true}
		return d, nil
	}
	a, err := parseAttr(r.buf[d.off:r.used], v.clusters)
	if err != nil {
		return nil, fmt.Errorf("ntfs: MFT record %d: %w", r.num, err)
	}
	if !a.resident && (a.startVCN != 0 || (a.lastVCN+1)*v.geo.clusterSize < a.allocSize) {
		return nil, fmt.Errorf("ntfs: MFT record %d: stream %q spans several records; changing its size is not supported: %w", r.num, name, syscall.EOPNOTSUPP)
	}
	if a.flags&afEncrypted != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is encrypted: %w", r.num, syscall.EACCES)
	}
	d.s = &stream{typ: typ, name: a.name, flags: a.flags, resident: a.resident, value: append([]byte(nil), a.value...),
		runs: a.runs, dataSize: a.dataSize, initSize: a.initSize, allocSize: a.allocSize, compUnit: a.compUnit}
	return d, nil
}

// save stores the stream's current state into its record (not yet written).
func (v *Volume) saveData(d *dataAttr) error {
	if d.sp != nil {
		return v.saveSplit(d)
	}
	var b []byte
	if d.s.resident {
		b = residentAttr(d.attrType(), d.name, d.s.value)
	} else {
		b = nonResidentAttr(d.attrType(), d.name, d.s.flags, d.s, v.geo.clusterSize)
	}
	if d.off < 0 {
		err := v.fit(d.r, func() error {
			off, err := d.r.insertAttr(b)
			d.off = off
			return err
		})
		var full *recordFullError
		if errors.As(err, &full) && d.o != nil && d.r.base == 0 {
			// A full base record: the new attribute goes to an extension record.
			d.off, d.sp = -1, &splitState{}
			return v.saveSplit(d)
		}
		return err
	}
	err := d.r.replaceAttr(d.off, b)
	var full *recordFullError
	if errors.As(err, &full) {
		// Make room with the other streams, then find this one again.
		name := d.name
		if moved, merr := v.moveOutOther(d.r, name); merr != nil || !moved {
			if merr == nil && d.o != nil && !d.s.resident {
				// Move the runlist's tail to extension records (an attribute list).
				d.sp = &splitState{exts: []uint64{d.r.num}}
				return v.saveSplit(d)
			}
			return err
		}
		if d.off = d.r.findAttr(d.attrType(), name, false); d.off < 0 {
			return err
		}
		return v.saveData(d)
	}
	return err
}

// writeData writes p at pos into the stream, allocating as needed.
func (v *Volume) writeData(d *dataAttr, p []byte, pos int64) error {
	end := pos + int64(len(p))
	if d.s.resident {
		if end <= int64(v.maxResident()) {
			val := d.s.value
			if int64(len(val)) < end {
				val = append(val, make([]byte, end-int64(len(val)))...)
			}
			copy(val[pos:], p)
			old := d.s.value
			d.s.value, d.s.dataSize = val, int64(len(val))
			if err := v.saveData(d); err == nil {
				return nil
			}
			d.s.value, d.s.dataSize = old, int64(len(old))
		}
		if err := v.makeNonResident(d, max(end, d.s.dataSize)); err != nil {
			return err
		}
	}
	if d.s.flags&afCompressed != 0 {
		if err := v.decompressStream(d); err != nil {
			return err
		}
	}
	if err := v.allocateRange(d, pos, end); err != nil {
		return err
	}
	if pos > d.s.initSize {
		if err := v.zeroRange(d.s, d.s.initSize, pos); err != nil {
			return err
		}
	}
	if err := v.writeRuns(d.s.runs, p, pos); err != nil {
		return err
	}
	d.s.dataSize = max(d.s.dataSize, end)
	d.s.initSize = max(d.s.initSize, end)
	return v.saveData(d)
}

// allocateRange makes sure clusters back bytes [pos, end): it extends the
// allocation and fills holes.
func (v *Volume) allocateRange(d *dataAttr, pos, end int64) error {
	cs := v.geo.clusterSize
	first, last := pos/cs, (end+cs-1)/cs // [first, last) clusters
	if have := d.s.allocSize / cs; last > have {
		runs, err := v.allocClusters(last-have, have)
		if err != nil {
			return err
		}
		d.s.runs = mergeRuns(append(d.s.runs, runs...))
		d.s.allocSize = last * cs
	}
	var out []run
	for _, r := range d.s.runs {
		if r.lcn >= 0 || r.vcn+r.length <= first || r.vcn >= last {
			out = append(out, r)
			continue
		}
		lo, hi := max(r.vcn, first), min(r.vcn+r.length, last)
		if lo > r.vcn {
			out = append(out, run{vcn: r.vcn, lcn: holeLCN, length: lo - r.vcn})
		}
		runs, err := v.allocClusters(hi-lo, lo)
		if err != nil {
			return err
		}
		if err := v.zeroRuns(runs); err != nil {
			return err
		}
		out = append(out, runs...)
		if hi < r.vcn+r.length {
			out = append(out, run{vcn: hi, lcn: holeLCN, length: r.vcn + r.length - hi})
		}
	}
	d.s.runs = mergeRuns(out)
	return nil
}

// zeroRuns clears newly allocated clusters that fill a hole.
func (v *Volume) zeroRuns(runs []run) error {
	z := make([]byte, 1<<16)
	cs := v.geo.clusterSize
	for _, r := range runs {
		for off := r.lcn * cs; off < (r.lcn+r.length)*cs; off += int64(len(z)) {
			n := min(int64(len(z)), (r.lcn+r.length)*cs-off)
			if err := v.devWrite(z[:n], off); err != nil {
				return fmt.Errorf("ntfs: zeroing clusters: %w", err)
			}
		}
	}
	return nil
}

// zeroRange writes zeros over the allocated parts of [from, to).
func (v *Volume) zeroRange(s *stream, from, to int64) error {
	cs := v.geo.clusterSize
	z := make([]byte, 1<<16)
	for from < to {
		i := findRun(s.runs, from/cs)
		if i < 0 {
			return nil
		}
		r := s.runs[i]
		n := min(to, (r.vcn+r.length)*cs, from+int64(len(z))) - from
		if r.lcn >= 0 {
			if err := v.writeRuns(s.runs, z[:n], from); err != nil {
				return err
			}
		}
		from += n
	}
	return nil
}

// makeNonResident moves a resident value into clusters.
func (v *Volume) makeNonResident(d *dataAttr, size int64) error {
	cs := v.geo.clusterSize
	val := d.s.value
	n := (size + cs - 1) / cs
	runs, err := v.allocClusters(max(n, 1), 0)
	if err != nil {
		return err
	}
	buf := make([]byte, max(n, 1)*cs)
	copy(buf, val)
	if err := v.writeRuns(runs, buf, 0); err != nil {
		return err
	}
	d.s = &stream{typ: atData, name: d.name, runs: runs, dataSize: int64(len(val)), initSize: int64(len(val)), allocSize: max(n, 1) * cs}
	return nil
}

// decompressStream rewrites a compressed stream as plain clusters so that
// it can be written like any other file (ntfs-3g rewrites it too).
func (v *Volume) decompressStream(d *dataAttr) error {
	cs := v.geo.clusterSize
	old := d.s
	n := (old.dataSize + cs - 1) / cs
	var runs []run
	if n > 0 {
		var err error
		if runs, err = v.allocClusters(n, 0); err != nil {
			return err
		}
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < old.dataSize; off += int64(len(buf)) {
		k := min(int64(len(buf)), old.dataSize-off)
		if _, err := v.readStream(old, buf[:k], off); err != nil && off+k < old.dataSize {
			return err
		}
		if err := v.writeRuns(runs, buf[:k], off); err != nil {
			return err
		}
	}
	if err := v.freeRuns(old.runs); err != nil {
		return err
	}
	d.s = &stream{typ: atData, name: d.name, runs: runs, dataSize: old.dataSize, initSize: old.dataSize, allocSize: n * cs}
	v.clearCompressedFlag(d.r)
	return nil
}

// truncateData sets the stream's size, freeing or allocating clusters.
func (v *Volume) truncateData(d *dataAttr, size int64) error {
	cs := v.geo.clusterSize
	if d.s.resident {
		if size <= int64(v.maxResident()) {
			val := make([]byte, size)
			copy(val, d.s.value)
			d.s.value, d.s.dataSize = val, size
			return v.saveData(d)
		}
		if err := v.makeNonResident(d, size); err != nil {
			return err
		}
	}
	if d.s.flags&afCompressed != 0 {
		if err := v.decompressStream(d); err != nil {
			return err
		}
	}
	keep := (size + cs - 1) / cs
	if size == 0 {
		if err := v.freeRuns(d.s.runs); err != nil {
			return err
		}
		d.s = &stream{typ: atData, name: d.name, resident: true}
		return v.saveData(d)
	}
	if keep < d.s.allocSize/cs {
		var kept, freed []run
		for _, r := range d.s.runs {
			switch {
			case r.vcn+r.length <= keep:
				kept = append(kept, r)
			case r.vcn >= keep:
				freed = append(freed, r)
			default:
				k := keep - r.vcn
				kept = append(kept, run{vcn: r.vcn, lcn: r.lcn, length: k})
				fr := run{vcn: keep, lcn: holeLCN, length: r.length - k}
				if r.lcn >= 0 {
					fr.lcn = r.lcn + k
				}
				freed = append(freed, fr)
			}
		}
		if err := v.freeRuns(freed); err != nil {
			return err
		}
		d.s.runs, d.s.allocSize = kept, keep*cs
	} else if keep > d.s.allocSize/cs {
		have := d.s.allocSize / cs
		runs, err := v.allocClusters(keep-have, have)
		if err != nil {
			return err
		}
		d.s.runs, d.s.allocSize = mergeRuns(append(d.s.runs, runs...)), keep*cs
	}
	d.s.dataSize = size
	d.s.initSize = min(d.s.initSize, size)
	return v.saveData(d)
}
