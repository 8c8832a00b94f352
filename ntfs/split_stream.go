package ntfs

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"syscall"
)

// Streams whose extents span several MFT records. A file with an
// $ATTRIBUTE_LIST keeps attributes in extension records; a long runlist
// is cut into extents (segments) covering consecutive VCN ranges, the
// first (VCN 0) holding the sizes. To change such a stream the whole
// runlist is edited in memory and laid out again over the records that
// held it (then new extension records), and the list is rebuilt from
// what the records hold, as ntfs-3g's ntfs_attr_update_mapping_pairs
// and ntfs_attrlist_entry_add keep it.

// splitState is where a stream's extents live.
type splitState struct {
	exts []uint64 // records holding extents, in VCN order
	recs []uint64 // extension records named by the list, in list order
	orig *stream  // the stream as last saved (nothing to do when unchanged)
}

// openStream opens a stream for editing within op o, following the
// attribute list when the file has one.
func (o *op) openStream(r *record, name string) (*dataAttr, error) {
	return o.openAttr(r, atData, name)
}

// openAttr opens attribute typ:name (a $DATA stream, an index's
// $INDEX_ALLOCATION or $BITMAP) for editing within op o.
func (o *op) openAttr(r *record, typ uint32, name string) (*dataAttr, error) {
	if r.findAttr(atAttrList, "", false) < 0 {
		d, err := o.v.openAttrOf(r, typ, name)
		if d != nil {
			d.o = o
		}
		return d, err
	}
	return o.openSplit(r, typ, name)
}

// openSplit gathers the extents of a stream of a file with an attribute list.
func (o *op) openSplit(r *record, typ uint32, name string) (*dataAttr, error) {
	ds, err := o.openSplits(r, name, typ)
	if err != nil {
		return nil, err
	}
	return ds[0], nil
}

// openSplits opens streams typs (all named name) of a file with an
// attribute list, as openSplit does one at a time, reading the list and
// parsing each record's attributes once for all: an index editor opens
// $INDEX_ALLOCATION and $BITMAP at every operation in its directory,
// and System32's records hold long runlists.
func (o *op) openSplits(r *record, name string, typs ...uint32) ([]*dataAttr, error) {
	recs, err := o.listRecords(r)
	if err != nil {
		return nil, err
	}
	segs := make([][]attr, len(typs))
	for _, n := range append([]uint64{r.num}, recs...) {
		rr, err := o.rec(n)
		if err != nil {
			return nil, fmt.Errorf("ntfs: MFT record %d: extension record %d: %w", r.num, n, err)
		}
		attrs, err := parseAttrs(rr, o.v.clusters)
		if err != nil {
			return nil, err
		}
		for _, a := range attrs {
			if i := slices.Index(typs, a.typ); i >= 0 && a.name == name {
				segs[i] = append(segs[i], a)
			}
		}
	}
	out := make([]*dataAttr, len(typs))
	for i, typ := range typs {
		// each stream its own list of records: saving one may change it
		if out[i], err = o.splitFrom(r, typ, name, slices.Clone(recs), segs[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// splitFrom makes the editor of stream typ:name of r from its extents
// (segs, in record order) and the extension records the list names.
func (o *op) splitFrom(r *record, typ uint32, name string, recs []uint64, segs []attr) (*dataAttr, error) {
	v := o.v
	d := &dataAttr{r: r, off: -1, name: name, o: o, sp: &splitState{recs: recs}, typ: typ}
	if len(segs) == 0 {
		d.s = &stream{typ: typ, name: name, resident: true}
		return d, nil
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].startVCN < segs[j].startVCN })
	f := segs[0]
	if f.flags&afEncrypted != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is encrypted: %w", r.num, syscall.EACCES)
	}
	if f.resident && len(segs) > 1 || f.startVCN != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d: stream %q has bad extents: %w", r.num, name, syscall.EIO)
	}
	s := &stream{typ: typ, name: name, flags: f.flags, resident: f.resident, value: append([]byte(nil), f.value...),
		dataSize: f.dataSize, initSize: f.initSize, allocSize: f.allocSize, compUnit: f.compUnit}
	next := int64(0)
	for _, a := range segs {
		if !f.resident && a.startVCN != next {
			return nil, fmt.Errorf("ntfs: MFT record %d: stream %q: extent at VCN %d, expected %d: %w", r.num, name, a.startVCN, next, syscall.EIO)
		}
		next = a.lastVCN + 1
		s.runs = append(s.runs, a.runs...)
		if !slices.Contains(d.sp.exts, a.rec) {
			d.sp.exts = append(d.sp.exts, a.rec)
		}
	}
	if !s.resident && next*v.geo.clusterSize != s.allocSize {
		return nil, fmt.Errorf("ntfs: MFT record %d: stream %q: extents end at VCN %d, allocation is %d bytes: %w", r.num, name, next, s.allocSize, syscall.EIO)
	}
	s.runs = mergeRuns(s.runs)
	d.s = s
	d.sp.orig = cloneStream(s)
	return d, nil
}

func cloneStream(s *stream) *stream {
	c := *s
	c.runs = slices.Clone(s.runs)
	c.value = slices.Clone(s.value)
	return &c
}

func sameStream(a, b *stream) bool {
	return a != nil && a.resident == b.resident && a.flags == b.flags && a.dataSize == b.dataSize &&
		a.initSize == b.initSize && a.allocSize == b.allocSize && slices.Equal(a.runs, b.runs) &&
		(!a.resident || string(a.value) == string(b.value))
}

// recSnap is a record's state, to retry a layout from scratch.
type recSnap struct {
	r            *record
	buf          []byte
	used         int
	nextID, seq  uint16
	flags, links uint16
}

func snap(r *record) recSnap {
	return recSnap{r, slices.Clone(r.buf), r.used, r.nextID, r.seq, r.flags, r.links}
}

func (s recSnap) restore() {
	copy(s.r.buf, s.buf)
	s.r.used, s.r.nextID, s.r.seq, s.r.flags, s.r.links = s.used, s.nextID, s.seq, s.flags, s.links
}

// layout is one attempt at placing a stream over records.
type layout struct {
	o       *op
	d       *dataAttr
	base    *record
	slots   []*record // records that held the stream, in VCN order
	fresh   *[]*record
	snaps   *[]recSnap
	reserve int // bytes of the base record kept for the attribute list
	ids     map[*record][]uint16
}

// saveSplit stores a stream over several records and rewrites the list.
func (v *Volume) saveSplit(d *dataAttr) error {
	o, sp, base := d.o, d.sp, d.r
	if sameStream(sp.orig, d.s) {
		return nil
	}
	if done, err := v.patchSizes(d); done || err != nil {
		return err
	}
	snaps := []recSnap{snap(base)}
	var slots []*record
	for _, n := range sp.exts {
		rr, err := o.rec(n)
		if err != nil {
			return err
		}
		slots = append(slots, rr)
	}
	if len(slots) == 0 {
		slots = []*record{base}
	}
	var old []*record
	for _, n := range sp.recs {
		rr, err := o.rec(n)
		if err != nil {
			return err
		}
		old = append(old, rr)
		snaps = append(snaps, snap(rr))
	}
	var fresh []*record
	for attempt, reserve := 0, 0; attempt < 32; attempt++ {
		for _, s := range snaps {
			s.restore()
		}
		l := &layout{o: o, d: d, base: base, slots: slots, fresh: &fresh, snaps: &snaps, reserve: reserve}
		if err := l.place(); err != nil {
			return err
		}
		// After a few layouts the base record still cannot hold the
		// list: it goes to clusters.
		need, err := v.writeAttrList(o, base, append(slices.Clone(old), fresh...), attempt >= 4)
		if err != nil {
			return err
		}
		if need == 0 {
			return v.finishSplit(d, old, fresh)
		}
		reserve += need
	}
	return &recordFullError{base.num}
}

// patchSizes handles a change of sizes alone (a write past the
// initialised size, a truncate within the last cluster): the first
// extent's header is updated where it is, keeping every attribute id.
func (v *Volume) patchSizes(d *dataAttr) (bool, error) {
	o, a, b := d.o, d.sp.orig, d.s
	if a == nil || a.resident || b.resident || a.flags != b.flags || !slices.Equal(a.runs, b.runs) || len(d.sp.exts) == 0 {
		return false, nil
	}
	rr, err := o.rec(d.sp.exts[0])
	if err != nil {
		return false, err
	}
	off := findSeg(rr, d.attrType(), d.name)
	if off < 0 || rr.buf[off+8] == 0 || binary.LittleEndian.Uint64(rr.buf[off+0x10:]) != 0 {
		return false, nil
	}
	binary.LittleEndian.PutUint64(rr.buf[off+0x28:], uint64(b.allocSize))
	binary.LittleEndian.PutUint64(rr.buf[off+0x30:], uint64(b.dataSize))
	binary.LittleEndian.PutUint64(rr.buf[off+0x38:], uint64(b.initSize))
	o.add(rr)
	d.sp.orig = cloneStream(b)
	return true, nil
}

// finishSplit frees extension records left empty and remembers the layout.
func (v *Volume) finishSplit(d *dataAttr, old, fresh []*record) error {
	o, sp := d.o, d.sp
	sp.recs, sp.exts = nil, nil
	for i, rr := range append(slices.Clone(old), fresh...) {
		if len(rr.attrOffsets()) > 0 {
			sp.recs = append(sp.recs, rr.num)
			o.add(rr)
			continue
		}
		if i < len(old) { // an extension record the stream no longer needs
			rr.flags &^= recInUse
			if rr.seq++; rr.seq == 0 {
				rr.seq = 1
			}
			o.add(rr)
		} else { // allocated by an attempt, then not used
			delete(o.recs, rr.num)
		}
		if err := o.freeRecord(rr.num); err != nil {
			return err
		}
	}
	o.mark(d.r)
	for _, rr := range append([]*record{d.r}, old...) {
		if rr.flags&recInUse != 0 && findSeg(rr, d.attrType(), d.name) >= 0 {
			sp.exts = append(sp.exts, rr.num)
		}
	}
	for _, rr := range fresh {
		if findSeg(rr, d.attrType(), d.name) >= 0 {
			sp.exts = append(sp.exts, rr.num)
		}
	}
	sort.SliceStable(sp.exts, func(i, j int) bool {
		return firstVCNIn(o, sp.exts[i], d.attrType(), d.name) < firstVCNIn(o, sp.exts[j], d.attrType(), d.name)
	})
	sp.orig = cloneStream(d.s)
	return nil
}

func firstVCNIn(o *op, n uint64, typ uint32, name string) int64 {
	rr := o.recs[n]
	off := findSeg(rr, typ, name)
	if off < 0 || rr.buf[off+8] == 0 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(rr.buf[off+0x10:]))
}

// findSeg returns the offset of the first typ extent named name in r.
func findSeg(r *record, typ uint32, name string) int { return r.findAttr(typ, name, false) }

// place removes the stream's old extents and lays the stream out again.
func (l *layout) place() error {
	l.ids = map[*record][]uint16{}
	for _, rr := range append([]*record{l.base}, l.slots...) {
		for off := findSeg(rr, l.d.attrType(), l.d.name); off >= 0; off = findSeg(rr, l.d.attrType(), l.d.name) {
			l.ids[rr] = append(l.ids[rr], binary.LittleEndian.Uint16(rr.buf[off+14:]))
			rr.removeAttr(off)
		}
	}
	s := l.d.s
	if s.resident {
		b := residentAttr(l.d.attrType(), l.d.name, s.value)
		for _, rr := range append([]*record{l.base}, l.slots...) {
			if l.room(rr) >= len(b) {
				return l.insert(rr, b)
			}
		}
		return l.placeFresh(b)
	}
	runs, first := s.runs, true
	for i := 0; first || len(runs) > 0; i++ {
		var rr *record
		if i < len(l.slots) {
			rr = l.slots[i]
		} else {
			var err error
			if rr, err = l.freshRecord(i - len(l.slots)); err != nil {
				return err
			}
		}
		n := fitRuns(runs, l.room(rr)-segHeader(l.d))
		if n == 0 && (len(runs) > 0 || l.room(rr) < segHeader(l.d)+8) {
			if i >= len(l.slots) && len(rr.attrOffsets()) == 0 {
				return fmt.Errorf("ntfs: MFT record %d: a single run does not fit an empty record: %w", l.base.num, syscall.EIO)
			}
			continue
		}
		if err := l.insert(rr, segmentAttr(l.d, runs[:n], first, l.o.v.geo.clusterSize)); err != nil {
			return err
		}
		runs, first = runs[n:], false
	}
	return nil
}

// insert adds an extent to rr, giving it back an id an old extent of
// the stream had there: relayouts then do not use up the record's ids.
func (l *layout) insert(rr *record, b []byte) error {
	off, err := rr.insertAttr(b)
	if err != nil {
		return err
	}
	if q := l.ids[rr]; len(q) > 0 {
		binary.LittleEndian.PutUint16(rr.buf[off+14:], q[0])
		l.ids[rr] = q[1:]
		rr.nextID--
		rr.syncHeader()
	}
	return nil
}

// placeFresh puts attribute bytes b into a new extension record.
func (l *layout) placeFresh(b []byte) error {
	for i := 0; ; i++ {
		rr, err := l.freshRecord(i)
		if err != nil {
			return err
		}
		if l.room(rr) >= len(b) {
			_, err := rr.insertAttr(b)
			return err
		}
		if len(rr.attrOffsets()) == 0 {
			return &recordFullError{rr.num}
		}
	}
}

// room is how many bytes r can take for the stream.
func (l *layout) room(r *record) int {
	if r == l.base {
		return r.free() - l.reserve
	}
	return r.free()
}

// freshRecord returns the i-th new extension record, allocating it.
func (l *layout) freshRecord(i int) (*record, error) {
	if i < len(*l.fresh) {
		return (*l.fresh)[i], nil
	}
	v := l.o.v
	n, err := l.o.allocExtRecord()
	if err != nil {
		return nil, err
	}
	r := emptyRecord(n, v.geo.recordSize)
	r.seq = v.nextSeq(n)
	r.flags = recInUse
	r.base = l.base.num
	binary.LittleEndian.PutUint64(r.buf[0x20:], fileRef(l.base))
	r.syncHeader()
	*l.fresh = append(*l.fresh, r)
	*l.snaps = append(*l.snaps, snap(r))
	l.o.recs[n] = r
	return r, nil
}

// segHeader is the size of an extent's header with its name, aligned.
func segHeader(d *dataAttr) int {
	hdr := 0x40
	if d.s.flags&(afCompressed|afSparse) != 0 {
		hdr = 0x48
	}
	return align8(hdr + 2*len(encodeName(d.name)))
}

// fitRuns is how many of runs fit as mapping pairs in room bytes
// (terminator and 8-byte alignment included).
func fitRuns(runs []run, room int) int {
	used, prev := 1, int64(0)
	for i, r := range runs {
		n := 1 + len(intBytes(r.length, true))
		if r.lcn >= 0 {
			n += len(intBytes(r.lcn-prev, true))
			prev = r.lcn
		}
		if align8(used+n) > room {
			return i
		}
		used += n
	}
	return len(runs)
}

// segmentAttr builds one extent; only the first carries the sizes.
func segmentAttr(d *dataAttr, runs []run, first bool, cs int64) []byte {
	s := &stream{runs: runs, compUnit: d.s.compUnit}
	if first {
		s.dataSize, s.initSize, s.allocSize = d.s.dataSize, d.s.initSize, d.s.allocSize
	}
	b := nonResidentAttr(d.attrType(), d.name, d.s.flags, s, cs)
	start := int64(0)
	if len(runs) > 0 {
		start = runs[0].vcn
	}
	binary.LittleEndian.PutUint64(b[0x10:], uint64(start))
	if len(runs) == 0 {
		binary.LittleEndian.PutUint64(b[0x18:], ^uint64(0))
	}
	// Only compressed and sparse extents have the compressed size at
	// 0x40; in the others a name starts there.
	if d.s.flags&(afCompressed|afSparse) != 0 {
		if first {
			binary.LittleEndian.PutUint64(b[0x40:], uint64(allocatedClusters(d.s.runs)*cs))
		} else {
			binary.LittleEndian.PutUint64(b[0x40:], 0)
		}
	}
	return b
}
