package ntfs

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"syscall"
)

// inode is a file: its base record and every attribute, including those
// an $ATTRIBUTE_LIST places in extension records.
type inode struct {
	num   uint64
	seq   uint16
	flags uint16
	links uint16
	attrs []attr
	recs  []uint64 // records holding the attributes, base first
	si    stdInfo
	names []fileName
}

// stream is one attribute with its extents merged.
type stream struct {
	typ                                     uint32
	name                                    string
	flags                                   uint16
	resident                                bool
	value                                   []byte
	runs                                    []run
	dataSize, initSize, allocSize, compSize int64
	compUnit                                int
}

// loadInode reads record n and the extension records its attribute list names.
func (v *Volume) loadInode(n uint64) (*inode, error) {
	if in := v.cache.getInode(n); in != nil {
		return in, nil
	}
	r, err := v.readRecord(n)
	if err != nil {
		return nil, err
	}
	return v.inodeOf(r)
}

// inodeOf parses base record r with its extension records and caches it.
func (v *Volume) inodeOf(r *record) (*inode, error) { return v.inodeFrom(r, v.readRecord) }

// inodeFrom is inodeOf with the extension records taken from get (a
// writer passes the records it just wrote).
func (v *Volume) inodeFrom(r *record, get func(uint64) (*record, error)) (*inode, error) {
	n := r.num
	if r.flags&recInUse == 0 || r.base != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is not a file in use: %w", n, syscall.ENOENT)
	}
	in := &inode{num: n, seq: r.seq, flags: r.flags, links: r.links, recs: []uint64{n}}
	var err error
	if in.attrs, err = parseAttrs(r, v.clusters); err != nil {
		return nil, err
	}
	if err := v.expandAttrList(in, get); err != nil {
		return nil, err
	}
	if err := in.decodeNames(); err != nil {
		return nil, err
	}
	v.cache.putInode(in)
	return in, nil
}

// expandAttrList adds the attributes held in extension records.
func (v *Volume) expandAttrList(in *inode, get func(uint64) (*record, error)) error {
	var al *attr
	for i := range in.attrs {
		if in.attrs[i].typ == atAttrList {
			al = &in.attrs[i]
		}
	}
	if al == nil {
		return nil
	}
	list, err := v.attrValue(al, 1<<20)
	if err != nil {
		return fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST: %w", in.num, err)
	}
	seen := map[uint64]bool{in.num: true}
	for off := 0; off+0x1a <= len(list); {
		l := int(binary.LittleEndian.Uint16(list[off+4:]))
		if l < 0x1a || off+l > len(list) {
			return fmt.Errorf("ntfs: MFT record %d: $ATTRIBUTE_LIST entry at %d has bad length %d: %w", in.num, off, l, syscall.EIO)
		}
		ref := binary.LittleEndian.Uint64(list[off+0x10:]) & refNumMask
		off += l
		if seen[ref] {
			continue
		}
		seen[ref] = true
		r, err := get(ref)
		if err != nil {
			return fmt.Errorf("ntfs: MFT record %d: extension record: %w", in.num, err)
		}
		if r.base != in.num {
			return fmt.Errorf("ntfs: MFT record %d: extension record %d belongs to %d: %w", in.num, ref, r.base, syscall.EIO)
		}
		attrs, err := parseAttrs(r, v.clusters)
		if err != nil {
			return err
		}
		in.attrs = append(in.attrs, attrs...)
		in.recs = append(in.recs, ref)
	}
	return nil
}

// attrValue returns the whole value of a single-extent attribute, at most max bytes.
func (v *Volume) attrValue(a *attr, max int64) ([]byte, error) {
	if a.resident {
		return a.value, nil
	}
	if a.dataSize > max || a.dataSize > a.allocSize {
		return nil, fmt.Errorf("value of %d bytes is too large: %w", a.dataSize, syscall.EIO)
	}
	buf := make([]byte, a.dataSize)
	if err := v.readRuns(a.runs, buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// find returns the stream of that type and name, extents merged, or nil.
func (in *inode) find(typ uint32, name string) *stream {
	var ext []*attr
	for i := range in.attrs {
		a := &in.attrs[i]
		if a.typ == typ && a.name == name {
			ext = append(ext, a)
		}
	}
	if len(ext) == 0 {
		for i := range in.attrs { // stream names are case-insensitive in Windows
			a := &in.attrs[i]
			if a.typ == typ && strings.EqualFold(a.name, name) {
				ext = append(ext, a)
			}
		}
	}
	if len(ext) == 0 {
		return nil
	}
	sort.SliceStable(ext, func(i, j int) bool { return ext[i].startVCN < ext[j].startVCN })
	first := ext[0]
	s := &stream{typ: typ, name: first.name, flags: first.flags, resident: first.resident, value: first.value,
		dataSize: first.dataSize, initSize: first.initSize, allocSize: first.allocSize,
		compSize: first.compSize, compUnit: first.compUnit}
	if s.resident {
		return s
	}
	for _, a := range ext {
		if !a.resident {
			s.runs = append(s.runs, a.runs...)
		}
	}
	s.runs = mergeRuns(s.runs)
	return s
}

// streamNames lists the names of the named $DATA streams.
func (in *inode) streamNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range in.attrs {
		if a.typ == atData && a.name != "" && !seen[a.name] {
			seen[a.name] = true
			out = append(out, a.name)
		}
	}
	return out
}

func (in *inode) isDir() bool { return in.flags&recIsDir != 0 }
