package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"
)

const leafMax = 1012 // Windows' largest leaf; bigger lists go under an ri

// writer serialises a hive tree into fresh hive bins.
type writer struct {
	h      *Hive
	a      allocator
	secOff map[*Security]uint32
	secs   []*Security
	refs   map[*Security]uint32
	seen   map[uint32]bool // nk cells written, to refuse a graph
	leaf   string          // "lh", "lf" or "li", after the hive's version
	bigOK  bool            // db records allowed (version 1.4 and later)
}

// Serialize lays the whole hive out as a clean, compact regf file: every
// live cell written once, no free space but the tail of each hive bin,
// subkey lists sorted by upcased name, checksums and equal sequence numbers.
// A hive with structural problems found while reading is refused.
func (h *Hive) Serialize() ([]byte, error) {
	h.mu.Lock() // loadAll changes the lazy state readers use
	defer h.mu.Unlock()
	if err := h.loadAll(); err != nil {
		return nil, fmt.Errorf("hive %s: %w", h.name, err)
	}
	for _, p := range h.Problems() {
		if errors.Is(p, ErrCorrupt) {
			return nil, fmt.Errorf("hive %s: not written, it has defects: %w", h.name, p)
		}
	}
	now := timeToFiletime(time.Now())
	w := &writer{h: h, secOff: map[*Security]uint32{}, refs: map[*Security]uint32{}, seen: map[uint32]bool{}, bigOK: h.bb.minor >= 4}
	switch {
	case h.bb.minor >= 5:
		w.leaf = "lh"
	case h.bb.minor >= 3:
		w.leaf = "lf"
	default:
		w.leaf = "li"
	}
	w.a.stamp = now
	w.a.buf = make([]byte, 0, len(h.data)+binSize)
	rootParent := uint32(0)
	if c, err := h.cell(h.root.cell); err == nil && len(c) >= 20 {
		rootParent = binary.LittleEndian.Uint32(c[16:])
	}
	rootOff, _, err := w.key(h.root, rootParent, nil)
	if err != nil {
		return nil, fmt.Errorf("hive %s: %w", h.name, err)
	}
	w.linkSecurity()
	w.a.finish()
	bb := h.bb
	seq := h.maxSeq + 1
	h.maxSeq = seq // a later save numbers its hive above this one
	bb.seq1, bb.seq2 = seq, seq
	bb.timestamp = now
	bb.fileType = fileTypePrimary
	bb.root = rootOff
	bb.binsSize = uint32(len(w.a.buf))
	out := make([]byte, 0, baseBlockSize+len(w.a.buf))
	out = append(out, bb.encode()...)
	return append(out, w.a.buf...), nil
}

// keySummary is what a parent needs from a written child.
type keySummary struct {
	off      uint32
	units    []uint16 // upcased name, for sorting and hashing
	name     string
	nameLen  int // in bytes of UTF-16
	classLen int
}

// key writes k and its subtree; parent is the parent's nk offset.
func (w *writer) key(k *Key, parent uint32, inherited *Security) (uint32, keySummary, error) {
	if k.cell != noCell {
		if w.seen[k.cell] {
			return 0, keySummary{}, fmt.Errorf("key cell 0x%x (%q) is reachable twice: %w", k.cell, k.Path(), ErrCorrupt)
		}
		w.seen[k.cell] = true
	}
	subs, vals, err := k.contents()
	if err != nil {
		return 0, keySummary{}, err
	}
	name, comp := encodeName(k.name)
	off := w.a.alloc(76 + len(name))
	var classOff uint32 = noCell
	if len(k.class) > 0 {
		classOff = w.a.alloc(len(k.class))
		copy(w.a.data(classOff), k.class)
	}
	sec := k.sec
	if sec == nil {
		sec = inherited
	}
	if sec == nil {
		return 0, keySummary{}, fmt.Errorf("key %q has no security descriptor to write: %w", k.Path(), ErrCorrupt)
	}
	secOff := w.security(sec)
	valList, maxVName, maxVData, err := w.values(vals)
	if err != nil {
		return 0, keySummary{}, fmt.Errorf("key %q: %w", k.Path(), err)
	}
	children := make([]keySummary, 0, len(subs))
	for _, s := range subs {
		_, cs, err := w.key(s, off, sec)
		if err != nil {
			return 0, keySummary{}, err
		}
		children = append(children, cs)
	}
	sort.SliceStable(children, func(i, j int) bool { return compareUnits(children[i].units, children[j].units) < 0 })
	for i := 1; i < len(children); i++ {
		if compareUnits(children[i-1].units, children[i].units) == 0 {
			return 0, keySummary{}, fmt.Errorf("key %q has two subkeys named %q: %w", k.Path(), children[i].name, ErrCorrupt)
		}
	}
	subList := w.subkeyList(children)
	var maxSub, maxClass int
	for _, c := range children {
		maxSub = max(maxSub, c.nameLen)
		maxClass = max(maxClass, c.classLen)
	}
	d := w.a.data(off)
	le := binary.LittleEndian
	copy(d, "nk")
	flags := k.flags &^ keyCompName
	if comp {
		flags |= keyCompName
	}
	le.PutUint16(d[2:], flags)
	le.PutUint64(d[4:], k.written)
	le.PutUint32(d[12:], k.access)
	le.PutUint32(d[16:], parent)
	le.PutUint32(d[20:], uint32(len(children)))
	le.PutUint32(d[24:], 0)
	le.PutUint32(d[28:], subList)
	le.PutUint32(d[32:], noCell)
	le.PutUint32(d[36:], uint32(len(vals)))
	le.PutUint32(d[40:], valList)
	le.PutUint32(d[44:], secOff)
	le.PutUint32(d[48:], classOff)
	le.PutUint32(d[52:], uint32(maxSub))
	le.PutUint32(d[56:], uint32(maxClass))
	le.PutUint32(d[60:], uint32(maxVName))
	le.PutUint32(d[64:], uint32(maxVData))
	le.PutUint16(d[72:], uint16(len(name)))
	le.PutUint16(d[74:], uint16(len(k.class)))
	copy(d[76:], name)
	sum := keySummary{off: off, units: upcaseUnits(k.name), name: k.name, nameLen: 2 * utf16Len(k.name), classLen: len(k.class)}
	return off, sum, nil
}

// contents gives a key's subkeys and values, reading untouched keys from
// the cells without keeping what was read (so serialising a big hive does
// not leave it all decoded in memory).
func (k *Key) contents() ([]*Key, []*Value, error) {
	subs, vals := k.subs, k.vals
	var err error
	if !k.subsLoaded.Load() {
		if subs, err = k.readSubkeys(); err != nil {
			return nil, nil, err
		}
	}
	if !k.valsLoaded.Load() {
		if vals, err = k.readValues(); err != nil {
			return nil, nil, err
		}
	}
	return subs, vals, nil
}

// security returns the offset of sec's sk cell, writing it the first time.
func (w *writer) security(sec *Security) uint32 {
	w.refs[sec]++
	if off, ok := w.secOff[sec]; ok {
		return off
	}
	off := w.a.alloc(20 + len(sec.desc))
	d := w.a.data(off)
	copy(d, "sk")
	binary.LittleEndian.PutUint32(d[16:], uint32(len(sec.desc)))
	copy(d[20:], sec.desc)
	w.secOff[sec] = off
	w.secs = append(w.secs, sec)
	return off
}

// linkSecurity closes the sk cells into their circular list and sets their
// reference counts.
func (w *writer) linkSecurity() {
	n := len(w.secs)
	for i, s := range w.secs {
		d := w.a.data(w.secOff[s])
		binary.LittleEndian.PutUint32(d[4:], w.secOff[w.secs[(i+1)%n]])
		binary.LittleEndian.PutUint32(d[8:], w.secOff[w.secs[(i+n-1)%n]])
		binary.LittleEndian.PutUint32(d[12:], w.refs[s])
	}
}

// values writes the vk cells, their data and the value list.
func (w *writer) values(vals []*Value) (list uint32, maxName, maxData int, err error) {
	if len(vals) == 0 {
		return noCell, 0, 0, nil
	}
	list = w.a.alloc(4 * len(vals))
	for i, v := range vals {
		data, err := v.dataLocked()
		if err != nil {
			return 0, 0, 0, err
		}
		off := w.value(v, data)
		binary.LittleEndian.PutUint32(w.a.data(list)[4*i:], off)
		maxName = max(maxName, 2*utf16Len(v.name))
		maxData = max(maxData, len(data))
	}
	return list, maxName, maxData, nil
}

func (w *writer) value(v *Value, data []byte) uint32 {
	name, comp := encodeName(v.name)
	off := w.a.alloc(20 + len(name))
	size, doff := w.data(data)
	d := w.a.data(off)
	le := binary.LittleEndian
	copy(d, "vk")
	le.PutUint16(d[2:], uint16(len(name)))
	le.PutUint32(d[4:], size)
	le.PutUint32(d[8:], doff)
	le.PutUint32(d[12:], v.typ)
	if comp {
		le.PutUint16(d[16:], valueCompName)
	}
	copy(d[20:], name)
	return off
}

// data stores value data inline, in one cell, or as db segments, and
// returns the vk's size and offset fields.
func (w *writer) data(b []byte) (uint32, uint32) {
	if len(b) <= 4 {
		var f [4]byte
		copy(f[:], b)
		return uint32(len(b)) | dataInline, binary.LittleEndian.Uint32(f[:])
	}
	if len(b) <= bigDataChunk || !w.bigOK {
		off := w.a.alloc(len(b))
		copy(w.a.data(off), b)
		return uint32(len(b)), off
	}
	nseg := (len(b) + bigDataChunk - 1) / bigDataChunk
	segs := make([]uint32, nseg)
	for i := range segs {
		part := b[i*bigDataChunk : min(len(b), (i+1)*bigDataChunk)]
		// 4 spare bytes: hivex reads a segment as its cell size less 8.
		segs[i] = w.a.alloc(len(part) + 4)
		copy(w.a.data(segs[i]), part)
	}
	list := w.a.alloc(4 * nseg)
	for i, s := range segs {
		binary.LittleEndian.PutUint32(w.a.data(list)[4*i:], s)
	}
	db := w.a.alloc(8)
	d := w.a.data(db)
	copy(d, "db")
	binary.LittleEndian.PutUint16(d[2:], uint16(nseg))
	binary.LittleEndian.PutUint32(d[4:], list)
	return uint32(len(b)), db
}

// subkeyList writes the sorted children as one leaf, or as an ri of leaves
// of equal size when there are more than a leaf holds.
func (w *writer) subkeyList(children []keySummary) uint32 {
	if len(children) == 0 {
		return noCell
	}
	if len(children) <= leafMax {
		return w.leafCell(children)
	}
	nleaves := (len(children) + leafMax - 1) / leafMax
	per := (len(children) + nleaves - 1) / nleaves
	var leaves []uint32
	for i := 0; i < len(children); i += per {
		leaves = append(leaves, w.leafCell(children[i:min(len(children), i+per)]))
	}
	ri := w.a.alloc(4 + 4*len(leaves))
	d := w.a.data(ri)
	copy(d, "ri")
	binary.LittleEndian.PutUint16(d[2:], uint16(len(leaves)))
	for i, l := range leaves {
		binary.LittleEndian.PutUint32(d[4+4*i:], l)
	}
	return ri
}

func (w *writer) leafCell(children []keySummary) uint32 {
	stride := 8
	if w.leaf == "li" {
		stride = 4
	}
	off := w.a.alloc(4 + stride*len(children))
	d := w.a.data(off)
	le := binary.LittleEndian
	copy(d, w.leaf)
	le.PutUint16(d[2:], uint16(len(children)))
	for i, c := range children {
		e := d[4+stride*i:]
		le.PutUint32(e, c.off)
		switch w.leaf {
		case "lh":
			var hsh uint32
			for _, u := range c.units {
				hsh = hsh*37 + uint32(u)
			}
			le.PutUint32(e[4:], hsh)
		case "lf":
			copy(e[4:8], nameHint(c.name))
		}
	}
	return off
}

// nameHint is an lf entry's hint: the first four characters of the name
// when they are all Latin-1, else zeros.
func nameHint(name string) []byte {
	var h [4]byte
	i := 0
	for _, r := range name {
		if i == 4 {
			break
		}
		if r > 0xFF {
			return make([]byte, 4)
		}
		h[i] = byte(r)
		i++
	}
	return h[:]
}
