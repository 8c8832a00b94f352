package ntfs

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// A commit's summary lists a directory it touched on both sides; for a
// System32 of 40,000 names where a commit changed a few INDX blocks that
// is 80,000 names decoded and matched for nothing. An index block at the
// same device bytes on both sides, none of them changed, holds the same
// entries on both; when both trees reach it, each of its names is on
// both sides with the same file reference, and the walk passes over it
// unless the file itself changed (keep). NarrowListings leaves such
// entries out, and reads the after side's unchanged blocks from the
// before side's parsed copy; an unchanged leaf is read for its file
// references only (lightLeaf), its names decoded only when one side's
// tree alone reaches it. The root (in the directory's record) and every
// changed or moved block are listed whole.

var _ volume.ListingNarrower = (*Volume)(nil)

// NarrowListings implements volume.ListingNarrower.
func (v *Volume) NarrowListings(dir volume.Ino, after volume.FS, changed []volume.Extent, keep func(volume.Ino) bool) ([]volume.DirEntry, []volume.DirEntry, int, error) {
	w, ok := after.(*Volume)
	if !ok || w == v || w.geo.clusterSize != v.geo.clusterSize {
		return nil, nil, 0, fmt.Errorf("ntfs: the other side is not another NTFS volume of the same geometry: %w", syscall.EINVAL)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	w.mu.RLock()
	defer w.mu.RUnlock()
	da, err := v.dirOf(uint64(dir))
	if err != nil {
		return nil, nil, 0, err
	}
	db, err := w.dirOf(uint64(dir))
	if err != nil {
		return nil, nil, 0, err
	}
	s := &sides{v: v, w: w, da: da, db: db, exts: mergeExtents(changed), same: map[int64]bool{}, nodes: map[int64]*indexNode{},
		light: map[int64]bool{}, fixed: map[int64]bool{}, keep: keep}
	s.pre = v.prefetchIndex(da)
	ta, err := treeOf(da, s.beforeNode)
	if err != nil {
		return nil, nil, 0, err
	}
	tb, err := treeOf(db, s.afterNode)
	if err != nil {
		return nil, nil, 0, err
	}
	before, left, err := v.narrow(ta, func(vcn int64) bool { return s.unchanged(vcn) && tb.reached[vcn] }, s)
	if err != nil {
		return nil, nil, 0, err
	}
	afterList, _, err := w.narrow(tb, func(vcn int64) bool { return s.unchanged(vcn) && ta.reached[vcn] }, s)
	if err != nil {
		return nil, nil, 0, err
	}
	return before, afterList, left, nil
}

// maxPrefetch bounds the index bytes prefetchIndex keeps in memory; a
// bigger index is read a block at a time past it.
const maxPrefetch = 64 << 20

// prefetchIndex reads di's $INDEX_ALLOCATION in device order, in one
// piece per run, for the walk that follows: it needs every block, in key
// order, which a cold page cache would serve with a seek each (the 1,700
// blocks of a 40,000-entry System32 took 180 ms of a commit's 400), and
// each block a system call. A read error leaves the walk to read the
// blocks alone, and report it.
func (v *Volume) prefetchIndex(di *dirIndex) []byte {
	a := di.alloc
	if a == nil || a.resident || a.dataSize <= 0 {
		return nil
	}
	buf := make([]byte, min(a.dataSize, maxPrefetch))
	if v.readRuns(a.runs, buf, 0) != nil {
		return nil
	}
	return buf
}

// sides is one directory before (v, da) and after (w, db) a commit.
type sides struct {
	v, w   *Volume
	da, db *dirIndex
	exts   []volume.Extent // changed device bytes, sorted and disjoint
	same   map[int64]bool  // unchanged's answers
	// the before side's blocks as read: a big directory's do not all
	// stay in the volume's node cache until the after side needs them
	nodes map[int64]*indexNode
	pre   []byte // the before side's $INDEX_ALLOCATION as prefetched
	// Unchanged leaves are read light (lightLeaf): nearly every block of
	// a big directory a commit touched, which the walk only counts.
	light map[int64]bool // nodes[vcn] holds references and flags only
	fixed map[int64]bool // pre's block at vcn has had its fixups applied
	keep  func(volume.Ino) bool
}

func (s *sides) beforeNode(vcn int64) (*indexNode, error) {
	if n := s.nodes[vcn]; n != nil {
		return n, nil
	}
	var n *indexNode
	b, err := s.preBlock(vcn)
	switch {
	case err != nil:
	case b == nil:
		n, err = s.v.node(s.da, vcn)
	case s.unchanged(vcn):
		if n = lightLeaf(b, vcn, s.keep); n != nil {
			s.light[vcn] = true
			break
		}
		fallthrough
	default:
		n, err = s.parsePre(b, vcn)
	}
	if err == nil {
		s.nodes[vcn] = n
	}
	return n, err
}

// preBlock is the before side's block at vcn from the prefetched bytes,
// its fixups applied (once: they are undone in place), or nil when the
// prefetch does not hold it. Parsed from there, its keys stay in s.pre
// for the length of the call, not in the volume's node cache.
func (s *sides) preBlock(vcn int64) ([]byte, error) {
	off := vcn * s.v.vcnBytes(s.da.blockSize)
	bs := int64(s.da.blockSize)
	if vcn < 0 || off+bs > int64(len(s.pre)) {
		return nil, nil
	}
	b := s.pre[off : off+bs]
	if !s.fixed[vcn] {
		if err := applyFixup(b, "INDX"); err != nil {
			return nil, fmt.Errorf("ntfs: directory %d: index block %d: %w", s.da.ino, vcn, err)
		}
		s.fixed[vcn] = true
	}
	return b, nil
}

func (s *sides) parsePre(b []byte, vcn int64) (*indexNode, error) {
	n, err := parseIndexNode(b[0x18:], vcn)
	if err != nil {
		return nil, fmt.Errorf("ntfs: directory %d: %w", s.da.ino, err)
	}
	return n, nil
}

// fullNode is a light node's block parsed whole, for a side whose tree
// reaches it when the other's does not: its names are then listed.
func (s *sides) fullNode(vcn int64) (*indexNode, error) {
	b, err := s.preBlock(vcn)
	if err != nil || b == nil {
		return nil, fmt.Errorf("ntfs: directory %d: index block %d is not prefetched: %w", s.da.ino, vcn, errors.Join(err, syscall.EIO))
	}
	return s.parsePre(b, vcn)
}

// lightLeaf reads leaf block b (fixups applied) for its file references
// and entry flags only, without keys or names: an unchanged block both
// trees reach is passed over by the walk, unless it names a file keep asks
// for. nil when b is not a leaf, names such a file, or is not sound
// (parseIndexNode then reads it and says what is wrong).
func lightLeaf(b []byte, vcn int64, keep func(volume.Ino) bool) *indexNode {
	if len(b) < 0x18+16 {
		return nil
	}
	h := b[0x18:]
	first, total := int(binary.LittleEndian.Uint32(h)), int(binary.LittleEndian.Uint32(h[4:]))
	if total > len(h) || first < 16 || first > total || h[12]&1 != 0 {
		return nil
	}
	n := &indexNode{vcn: vcn, leaf: true, entries: make([]indexEntry, 0, countEntries(h[:total], first))}
	for off := first; off+0x10 <= total; {
		e := indexEntry{ref: binary.LittleEndian.Uint64(h[off:]), flags: binary.LittleEndian.Uint16(h[off+12:]), child: -1}
		l := int(binary.LittleEndian.Uint16(h[off+8:]))
		if l < 0x10 || off+l > total || l%8 != 0 || e.flags&ieSubnode != 0 {
			return nil
		}
		if e.flags&ieLast != 0 {
			n.entries = append(n.entries, e)
			return n
		}
		if keep(volume.Ino(e.ref & refNumMask)) {
			return nil
		}
		n.entries = append(n.entries, e)
		off += l
	}
	return nil
}

// afterNode reads the after side's block at vcn, from the before side's
// copy when its bytes did not change.
func (s *sides) afterNode(vcn int64) (*indexNode, error) {
	if s.unchanged(vcn) {
		return s.beforeNode(vcn)
	}
	return s.w.node(s.db, vcn)
}

// unchanged reports whether index block vcn lies at the same device
// bytes on both sides and none of them changed: both sides then hold
// the same block.
func (s *sides) unchanged(vcn int64) bool {
	if same, ok := s.same[vcn]; ok {
		return same
	}
	same := s.blockUnchanged(vcn)
	s.same[vcn] = same
	return same
}

func (s *sides) blockUnchanged(vcn int64) bool {
	a, b := s.da.alloc, s.db.alloc
	if vcn < 0 || s.da.blockSize != s.db.blockSize || a == nil || b == nil || a.resident || b.resident {
		return false
	}
	cs := s.v.geo.clusterSize
	off := vcn * s.v.vcnBytes(s.da.blockSize)
	end := off + int64(s.da.blockSize)
	if end > a.dataSize || end > b.dataSize {
		return false
	}
	for p := off; p < end; {
		ia, ib := findRun(a.runs, p/cs), findRun(b.runs, p/cs)
		if ia < 0 || ib < 0 {
			return false
		}
		ra, rb := a.runs[ia], b.runs[ib]
		pa, pb := ra.lcn*cs+p-ra.vcn*cs, rb.lcn*cs+p-rb.vcn*cs
		if ra.lcn < 0 || rb.lcn < 0 || pa != pb {
			return false
		}
		next := min(end, (ra.vcn+ra.length)*cs, (rb.vcn+rb.length)*cs)
		if overlaps(s.exts, pa, pa+next-p) {
			return false
		}
		p = next
	}
	return true
}

// mergeExtents sorts extents and joins those that overlap or touch.
func mergeExtents(in []volume.Extent) []volume.Extent {
	es := slices.Clone(in)
	slices.SortFunc(es, func(x, y volume.Extent) int { return cmp.Compare(x.Off, y.Off) })
	var out []volume.Extent
	for _, e := range es {
		if e.Len <= 0 {
			continue
		}
		if n := len(out); n > 0 && e.Off <= out[n-1].Off+out[n-1].Len {
			out[n-1].Len = max(out[n-1].Len, e.Off+e.Len-out[n-1].Off)
			continue
		}
		out = append(out, e)
	}
	return out
}

// overlaps reports whether [lo, hi) meets one of exts (sorted, disjoint).
func overlaps(exts []volume.Extent, lo, hi int64) bool {
	i, _ := slices.BinarySearchFunc(exts, lo, func(e volume.Extent, t int64) int {
		if e.Off+e.Len <= t {
			return -1
		}
		return 1
	})
	return i < len(exts) && exts[i].Off < hi
}

// tree is a directory's index entries in collation order, with the VCN
// of the node holding each, and the blocks the tree reaches.
type tree struct {
	entries []*indexEntry
	vcns    []int64
	reached map[int64]bool
}

func treeOf(di *dirIndex, get func(vcn int64) (*indexNode, error)) (*tree, error) {
	t := &tree{reached: map[int64]bool{}}
	err := walkTree(di, func(vcn int64) (*indexNode, error) {
		t.reached[vcn] = true
		return get(vcn)
	}, func(e *indexEntry, vcn int64) error {
		t.entries, t.vcns = append(t.entries, e), append(t.vcns, vcn)
		return nil
	})
	return t, err
}

// narrow lists t as ReadDir would, leaving out the entries of common
// blocks whose file s.keep rejects; left is how many it left out. A light
// block (no names read) that is not common is read whole and listed.
func (v *Volume) narrow(t *tree, common func(vcn int64) bool, s *sides) (out []volume.DirEntry, left int, err error) {
	for i := 0; i < len(t.entries); i++ {
		e, vcn := t.entries[i], t.vcns[i]
		if common(vcn) && !s.keep(volume.Ino(e.ref&refNumMask)) {
			left++
			continue
		}
		if !s.light[vcn] {
			if d, ok := v.listEntry(e); ok {
				out = append(out, d)
			}
			continue
		}
		n, err := s.fullNode(vcn)
		if err != nil {
			return nil, 0, err
		}
		for k := range n.entries {
			if n.entries[k].flags&ieLast == 0 {
				if d, ok := v.listEntry(&n.entries[k]); ok {
					out = append(out, d)
				}
			}
		}
		for i+1 < len(t.entries) && t.vcns[i+1] == vcn { // a leaf's entries are walked together
			i++
		}
	}
	return out, left, nil
}
