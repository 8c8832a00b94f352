package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// Write is one write of a save into the hive file.
type Write struct {
	Off  int64
	Data []byte
}

// Save is what SaveChanges gives: the writes that make the hive file hold
// the hive as edited.
type Save struct {
	Writes []Write
	// Whole says the file is rewritten from offset 0 as a compact hive of
	// Size bytes (truncate it to Size); otherwise the writes change it in
	// place and it is at least Size bytes long after them.
	Whole  bool
	Size   int64
	Header []byte // the new base block, for ResetLog
}

// Bytes is how many bytes the save writes.
func (s Save) Bytes() int {
	n := 0
	for _, w := range s.Writes {
		n += len(w.Data)
	}
	return n
}

// errWhole says an in-place save does not apply; the hive is written whole.
var errWhole = errors.New("written whole")

// SaveChanges gives what to write into the hive's file for the edits made
// since it was opened, with a mark to pass to Saved once written. A small
// change to a clean hive opened from its file is written in place, as
// Windows writes a hive: the cells of the keys that changed, in the bins
// that hold them (new cells in their free space first, then in new bins
// appended at the end), and the base block with new sequence numbers. A
// replayed (dirty) hive, a second save, a big change, a new security
// descriptor, or anything the in-place writer finds inconsistent gives the
// whole compact hive of Serialize instead.
func (h *Hive) SaveChanges() (Save, uint64, error) {
	h.mu.Lock()
	edits := h.edits
	s, err := h.saveInPlace()
	h.diskMoved = true // the file will no longer be the one the model was read from
	h.dirtyKeys = nil
	h.mu.Unlock()
	if err == nil {
		return s, edits, nil
	}
	if !errors.Is(err, errWhole) {
		slog.Debug("hive: in-place save not possible, writing it whole", "hive", h.name, "err", err)
	}
	data, err := h.Serialize()
	if err != nil {
		return Save{}, 0, err
	}
	return Save{Writes: []Write{{0, data}}, Whole: true, Size: int64(len(data)), Header: data[:baseBlockSize]}, edits, nil
}

// saveInPlace builds the in-place save; the caller holds h.mu exclusively.
// It changes nothing of the model: every byte it writes is in copies.
func (h *Hive) saveInPlace() (Save, error) {
	switch {
	case h.replay.Dirty || h.unsound != nil:
		return Save{}, fmt.Errorf("replayed hive: %w", errWhole)
	case h.diskMoved || h.secEdited || h.root.cell == noCell:
		return Save{}, fmt.Errorf("saved before, new security or new hive: %w", errWhole)
	case h.dataLen() != uint64(h.bb.binsSize) || h.limit != h.bb.binsSize:
		return Save{}, fmt.Errorf("hive bins shorter than declared: %w", errWhole)
	}
	for _, p := range h.Problems() {
		if errors.Is(p, ErrCorrupt) {
			return Save{}, p
		}
	}
	s := &saver{h: h, p: newPatch(h), drops: map[uint32]uint32{}}
	s.w = s.newWriter()
	keys := h.liveDirty()
	for _, k := range keys {
		if err := s.release(k); err != nil {
			return Save{}, err
		}
	}
	for _, k := range keys {
		if err := s.rewrite(k); err != nil {
			return Save{}, err
		}
	}
	if err := s.recount(); err != nil {
		return Save{}, err
	}
	s.p.coalesce()
	s.w.a.finish()
	writes := s.p.writes()
	changed := len(s.w.a.buf)
	for _, w := range writes {
		changed += len(w.Data)
	}
	if changed > int(h.bb.binsSize)/2 {
		return Save{}, fmt.Errorf("%d of %d bytes change: %w", changed, h.bb.binsSize, errWhole)
	}
	bb := h.bb
	seq := h.maxSeq + 1
	bb.seq1, bb.seq2 = seq, seq
	bb.timestamp = s.w.a.stamp
	bb.fileType = fileTypePrimary
	bb.binsSize = h.bb.binsSize + uint32(len(s.w.a.buf))
	header := bb.encode()
	h.maxSeq = seq
	out := []Write{{0, header}}
	out = append(out, writes...)
	if len(s.w.a.buf) > 0 {
		out = append(out, Write{Off: int64(h.bb.binsSize) + baseBlockSize, Data: s.w.a.buf})
	}
	return Save{Writes: out, Size: int64(bb.binsSize) + baseBlockSize, Header: header}, nil
}

// liveDirty lists the keys an in-place save writes again: changed, in the
// file, and not deleted (a deleted key's cells are freed by its parent's).
func (h *Hive) liveDirty() []*Key {
	var out []*Key
	for _, k := range h.dirtyKeys {
		if k.cell != noCell && k.dirty != 0 && !k.gone() {
			out = append(out, k)
		}
	}
	return out
}

// saver is one in-place save: the patched bins, the writer of new cells
// (into free cells of those bins, then appended bins), and the references
// to security cells that freed keys drop.
type saver struct {
	h     *Hive
	p     *patch
	w     *writer
	drops map[uint32]uint32 // sk cell → references dropped
}

func (s *saver) newWriter() *writer {
	h := s.h
	w := &writer{h: h, secOff: map[*Security]uint32{}, refs: map[*Security]uint32{}, seen: map[uint32]bool{}, bigOK: h.bb.minor >= 4}
	switch {
	case h.bb.minor >= 5:
		w.leaf = "lh"
	case h.bb.minor >= 3:
		w.leaf = "lf"
	default:
		w.leaf = "li"
	}
	for off, sec := range h.secs {
		w.secOff[sec] = off // new keys point at the sk cells already there
	}
	w.a.stamp = timeToFiletime(time.Now())
	w.a.base = h.bb.binsSize
	w.a.reuse = s.p
	return w
}

// release frees the cells k's new lists replace: the old value list and
// the values no longer in it, the old subkey list and the subtrees of
// deleted subkeys, the old class name.
func (s *saver) release(k *Key) error {
	h := s.h
	nk, _, err := h.sigCell(k.cell, "nk")
	if err != nil {
		return err
	}
	if k.dirty&dirtyVals != 0 {
		if !k.valsLoaded.Load() {
			return fmt.Errorf("key %q: values changed but not loaded: %w", k.Path(), errWhole)
		}
		kept := map[uint32]bool{}
		for _, v := range k.vals {
			kept[v.cell] = true
		}
		if err := s.releaseValues(k.nval, k.valList, kept); err != nil {
			return fmt.Errorf("key %q: %w", k.Path(), err)
		}
	}
	if k.dirty&dirtySubs != 0 {
		if !k.subsLoaded.Load() {
			return fmt.Errorf("key %q: subkeys changed but not loaded: %w", k.Path(), errWhole)
		}
		kept := map[uint32]bool{}
		for _, c := range k.subs {
			kept[c.cell] = true
		}
		if err := s.releaseSubkeys(k.nsub, k.subList, kept, k.depth); err != nil {
			return fmt.Errorf("key %q: %w", k.Path(), err)
		}
	}
	if k.dirty&dirtyClass != 0 {
		le := binary.LittleEndian
		if off, n := le.Uint32(nk[48:]), le.Uint16(nk[74:]); off != noCell && n > 0 {
			if err := s.p.release(off); err != nil {
				return fmt.Errorf("class name of key %q: %w", k.Path(), err)
			}
		}
	}
	return nil
}

// releaseValues frees a value list and the values in it not kept.
func (s *saver) releaseValues(n, list uint32, kept map[uint32]bool) error {
	if n == 0 {
		return nil
	}
	c, err := s.h.cell(list)
	if err != nil {
		return err
	}
	if uint64(n)*4 > uint64(len(c)) {
		return fmt.Errorf("value list at 0x%x shorter than its %d values: %w", list, n, ErrCorrupt)
	}
	for i := uint32(0); i < n; i++ {
		if off := binary.LittleEndian.Uint32(c[4*i:]); !kept[off] {
			if err := s.releaseValue(off); err != nil {
				return err
			}
		}
	}
	return s.p.release(list)
}

// releaseValue frees a vk cell and its data (one cell, or a db record with
// its list and segments), read as valueData reads them.
func (s *saver) releaseValue(off uint32) error {
	h := s.h
	vk, _, err := h.sigCell(off, "vk")
	if err != nil {
		return err
	}
	if len(vk) < 20 {
		return fmt.Errorf("value cell at 0x%x too short: %w", off, ErrCorrupt)
	}
	size, doff := binary.LittleEndian.Uint32(vk[4:]), binary.LittleEndian.Uint32(vk[8:])
	if size&dataInline == 0 && size > 0 {
		dc, err := h.cell(doff)
		if err != nil {
			return err
		}
		if size > bigDataChunk && h.bb.minor >= 4 && len(dc) >= 8 && string(dc[:2]) == "db" {
			if err := s.releaseBig(dc); err != nil {
				return fmt.Errorf("big data at 0x%x: %w", doff, err)
			}
		}
		if err := s.p.release(doff); err != nil {
			return err
		}
	}
	return s.p.release(off)
}

func (s *saver) releaseBig(db []byte) error {
	list := binary.LittleEndian.Uint32(db[4:])
	segs, err := s.h.cell(list)
	if err != nil {
		return err
	}
	n := int(binary.LittleEndian.Uint16(db[2:]))
	if 4*n > len(segs) {
		return fmt.Errorf("%d segments, more than its list holds: %w", n, ErrCorrupt)
	}
	for i := 0; i < n; i++ {
		if err := s.p.release(binary.LittleEndian.Uint32(segs[4*i:])); err != nil {
			return err
		}
	}
	return s.p.release(list)
}

// releaseSubkeys frees a subkey list (an ri and its leaves, or one leaf)
// and the subtrees of the keys in it not kept.
func (s *saver) releaseSubkeys(n, list uint32, kept map[uint32]bool, depth int) error {
	if n == 0 {
		return nil
	}
	offs, err := s.h.readList(list, n)
	if err != nil {
		return err
	}
	c, sig, err := s.h.sigCell(list, "li", "lf", "lh", "ri")
	if err != nil {
		return err
	}
	if sig == "ri" {
		leaves, err := listEntries(c, 4, 0, list)
		if err != nil {
			return err
		}
		for _, l := range leaves {
			if err := s.p.release(l); err != nil {
				return err
			}
		}
	}
	if err := s.p.release(list); err != nil {
		return err
	}
	for _, off := range offs {
		if !kept[off] {
			if err := s.releaseTree(off, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseTree frees a deleted key's cells and everything below it, as the
// file holds them, and counts the security reference it drops.
func (s *saver) releaseTree(off uint32, depth int) error {
	if depth >= maxDepth {
		return fmt.Errorf("key cell 0x%x nested deeper than %d levels: %w", off, maxDepth, ErrCorrupt)
	}
	nk, _, err := s.h.sigCell(off, "nk")
	if err != nil {
		return err
	}
	if len(nk) < 76 {
		return fmt.Errorf("key cell at 0x%x too short: %w", off, ErrCorrupt)
	}
	le := binary.LittleEndian
	if err := s.releaseSubkeys(le.Uint32(nk[20:]), le.Uint32(nk[28:]), nil, depth); err != nil {
		return err
	}
	if err := s.releaseValues(le.Uint32(nk[36:]), le.Uint32(nk[40:]), nil); err != nil {
		return err
	}
	if c, n := le.Uint32(nk[48:]), le.Uint16(nk[74:]); c != noCell && n > 0 {
		if err := s.p.release(c); err != nil {
			return err
		}
	}
	s.drops[le.Uint32(nk[44:])]++
	return s.p.release(off)
}

// rewrite writes k's new lists and class (new subkeys whole, with their
// subtrees) and updates its nk cell in place.
func (s *saver) rewrite(k *Key) error {
	w, le := s.w, binary.LittleEndian
	type field struct {
		at  int
		val uint32
	}
	set := []field{}
	if k.dirty&dirtyVals != 0 {
		list, maxName, maxData, err := s.valueList(k.vals)
		if err != nil {
			return fmt.Errorf("key %q: %w", k.Path(), err)
		}
		set = append(set, field{36, uint32(len(k.vals))}, field{40, list}, field{60, uint32(maxName)}, field{64, uint32(maxData)})
	}
	if k.dirty&dirtySubs != 0 {
		children := make([]keySummary, 0, len(k.subs))
		for _, c := range k.subs {
			if c.cell != noCell {
				children = append(children, keySummary{off: c.cell, units: upcaseUnits(c.name), name: c.name, nameLen: 2 * utf16Len(c.name), classLen: len(c.class)})
				continue
			}
			_, cs, err := w.key(c, k.cell, k.sec)
			if err != nil {
				return err
			}
			children = append(children, cs)
		}
		sort.SliceStable(children, func(i, j int) bool { return compareUnits(children[i].units, children[j].units) < 0 })
		var maxSub, maxClass int
		for i, c := range children {
			if i > 0 && compareUnits(children[i-1].units, c.units) == 0 {
				return fmt.Errorf("key %q has two subkeys named %q: %w", k.Path(), c.name, ErrCorrupt)
			}
			maxSub, maxClass = max(maxSub, c.nameLen), max(maxClass, c.classLen)
		}
		set = append(set, field{20, uint32(len(children))}, field{28, w.subkeyList(children)}, field{52, uint32(maxSub)}, field{56, uint32(maxClass)})
	}
	if k.dirty&dirtyClass != 0 {
		var off uint32 = noCell
		if len(k.class) > 0 {
			off = w.a.alloc(len(k.class))
			copy(w.a.data(off), k.class)
		}
		set = append(set, field{48, off})
		if err := s.raiseParentClass(k); err != nil {
			return err
		}
	}
	c, err := s.p.cell(k.cell)
	if err != nil {
		return err
	}
	nk := c[4:]
	le.PutUint64(nk[4:], k.written)
	for _, f := range set {
		le.PutUint32(nk[f.at:], f.val)
	}
	if k.dirty&dirtyClass != 0 {
		le.PutUint16(nk[74:], uint16(len(k.class)))
	}
	return nil
}

// valueList writes a key's value list: values read from the file keep
// their cells, values set since are written new.
func (s *saver) valueList(vals []*Value) (list uint32, maxName, maxData int, err error) {
	if len(vals) == 0 {
		return noCell, 0, 0, nil
	}
	w := s.w
	list = w.a.alloc(4 * len(vals))
	for i, v := range vals {
		off, n := v.cell, 0
		if off == noCell {
			off, n = w.value(v, v.data), len(v.data)
		} else if n = int(v.size &^ dataInline); v.size&dataInline != 0 {
			n = min(n, 4)
		}
		binary.LittleEndian.PutUint32(w.a.data(list)[4*i:], off)
		maxName = max(maxName, 2*utf16Len(v.name))
		maxData = max(maxData, n)
	}
	return list, maxName, maxData, nil
}

// raiseParentClass keeps the parent's longest-class field at least the
// new class's length (Windows only ever raises it).
func (s *saver) raiseParentClass(k *Key) error {
	if k.parent == nil || k.parent.cell == noCell {
		return nil
	}
	c, err := s.p.cell(k.parent.cell)
	if err != nil {
		return err
	}
	if n := uint32(len(k.class)); n > binary.LittleEndian.Uint32(c[4+56:]) {
		binary.LittleEndian.PutUint32(c[4+56:], n)
	}
	return nil
}

// recount adds the references of new keys to their security cells and
// takes away those of freed keys; a security cell left unreferenced is
// unlinked from the list of sk cells and freed, as Windows does. A new
// security descriptor (to link in) is Serialize's job.
func (s *saver) recount() error {
	if len(s.w.secs) > 0 {
		return fmt.Errorf("a new security descriptor: %w", errWhole)
	}
	delta := map[uint32]int64{}
	for sec, n := range s.w.refs {
		delta[s.w.secOff[sec]] += int64(n)
	}
	for off, n := range s.drops {
		delta[off] -= int64(n)
	}
	offs := make([]uint32, 0, len(delta))
	for off := range delta {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] }) // the same file from the same edits
	for _, off := range offs {
		if delta[off] == 0 {
			continue
		}
		c, err := s.skCell(off)
		if err != nil {
			return err
		}
		n := int64(binary.LittleEndian.Uint32(c[16:])) + delta[off]
		switch {
		case n < 0:
			return fmt.Errorf("security cell at 0x%x: more keys freed than it counted: %w", off, ErrCorrupt)
		case n == 0:
			if err := s.unlinkSecurity(off, c); err != nil {
				return err
			}
		default:
			binary.LittleEndian.PutUint32(c[16:], uint32(n))
		}
	}
	return nil
}

// skCell is the whole sk cell at off in the patch.
func (s *saver) skCell(off uint32) ([]byte, error) {
	c, err := s.p.cell(off)
	if err != nil {
		return nil, err
	}
	if len(c) < 24 || string(c[4:6]) != "sk" || int32(binary.LittleEndian.Uint32(c)) >= 0 {
		return nil, fmt.Errorf("security cell at 0x%x: %w", off, ErrCorrupt)
	}
	return c, nil
}

// unlinkSecurity takes the sk cell at off out of the circular list of sk
// cells and frees it.
func (s *saver) unlinkSecurity(off uint32, c []byte) error {
	le := binary.LittleEndian
	next, prev := le.Uint32(c[8:]), le.Uint32(c[12:])
	if next == off || prev == off {
		return fmt.Errorf("security cell at 0x%x, the last one, left unreferenced: %w", off, ErrCorrupt)
	}
	pc, err := s.skCell(prev)
	if err != nil {
		return err
	}
	le.PutUint32(pc[8:], next)
	nc, err := s.skCell(next)
	if err != nil {
		return err
	}
	le.PutUint32(nc[12:], prev)
	return s.p.release(off)
}
