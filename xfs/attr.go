package xfs

import (
	"fmt"
	"sort"
)

// Attribute namespaces (the entry flags).
const (
	attrLocal  = 1 << 0
	attrRoot   = 1 << 1
	attrSecure = 1 << 2
	attrParent = 1 << 3
	attrIncomp = 1 << 7
)

type xattr struct {
	name  string // with its namespace prefix: "user.", "trusted.", "security."
	value []byte
}

func attrName(flags byte, name []byte) (string, bool) {
	switch {
	case flags&(attrIncomp|attrParent) != 0:
		return "", false // half-set, or a parent pointer (not an xattr)
	case flags&attrRoot != 0:
		return "trusted." + string(name), true
	case flags&attrSecure != 0:
		return "security." + string(name), true
	}
	return "user." + string(name), true
}

// readAttrs returns every extended attribute of in, sorted by name.
func (f *FS) readAttrs(in *inode) ([]xattr, error) {
	var out []xattr
	var err error
	switch {
	case in.afork == nil:
		return nil, nil
	case in.aformat == fmtLocal:
		out, err = shortformAttrs(in.afork)
	case in.aformat == fmtExtents || in.aformat == fmtBtree:
		var ex []extent
		if ex, err = f.attrExtents(in); err == nil && len(ex) > 0 { // a fork emptied of all its attributes has none
			out, err = f.treeAttrs(in, ex)
		}
	default:
		err = fmt.Errorf("attr fork format %d: %w", in.aformat, ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("xfs: inode %d attributes: %w", in.ino, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func shortformAttrs(b []byte) ([]xattr, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("short-form header: %w", ErrCorrupt)
	}
	total, count := int(be.Uint16(b)), int(b[2])
	if total > len(b) || total < 4 {
		return nil, fmt.Errorf("short-form size %d of %d: %w", total, len(b), ErrCorrupt)
	}
	b = b[:total]
	var out []xattr
	for p, i := 4, 0; i < count; i++ {
		if p+3 > len(b) {
			return nil, fmt.Errorf("short-form entry %d: %w", i, ErrCorrupt)
		}
		nl, vl, fl := int(b[p]), int(b[p+1]), b[p+2]
		if p+3+nl+vl > len(b) {
			return nil, fmt.Errorf("short-form entry %d: %w", i, ErrCorrupt)
		}
		if n, ok := attrName(fl, b[p+3:p+3+nl]); ok {
			out = append(out, xattr{n, clone(b[p+3+nl : p+3+nl+vl])})
		}
		p += 3 + nl + vl
	}
	return out, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// treeAttrs reads a leaf or node attribute fork: from the node blocks
// down to the first leaf, then along the leaves' forward links.
func (f *FS) treeAttrs(in *inode, ex []extent) ([]xattr, error) {
	var out []xattr
	err := f.eachAttrLeaf(ex, func(b []byte, blk uint32) error {
		attrs, err := f.attrLeaf(in, ex, b, blk)
		out = append(out, attrs...)
		return err
	})
	return out, err
}

// eachAttrLeaf calls fn with every leaf of the fork, first to last.
func (f *FS) eachAttrLeaf(ex []extent, fn func(b []byte, blk uint32) error) error {
	blk, err := f.firstAttrLeaf(ex)
	if err != nil {
		return err
	}
	seen := map[uint32]bool{}
	for !seen[blk] {
		seen[blk] = true
		b, err := f.attrBlock(ex, blk)
		if err != nil {
			return err
		}
		if err := fn(b, blk); err != nil {
			return err
		}
		if blk = be.Uint32(b[0:]); blk == 0 {
			return nil
		}
	}
	return fmt.Errorf("attr leaves loop at block %d: %w", blk, ErrCorrupt)
}

// firstAttrLeaf is the attribute fork block of the first leaf: block 0
// or, in a node tree, the leftmost child down each level.
func (f *FS) firstAttrLeaf(ex []extent) (uint32, error) {
	blk := uint32(0)
	for depth := 0; ; depth++ {
		b, err := f.attrBlock(ex, blk)
		if err != nil {
			return 0, err
		}
		magic, hdr := be.Uint16(b[8:]), 16
		if f.sb.version == 5 {
			hdr = 64
		}
		if magic != 0xfebe && magic != 0x3ebe {
			return blk, nil // a leaf
		}
		if depth > 8 || be.Uint16(b[hdr-4-4*(hdr/64):]) == 0 || len(b) < hdr+8 { // count at 12 or 56
			return 0, fmt.Errorf("attr node %d: %w", blk, ErrCorrupt)
		}
		blk = be.Uint32(b[hdr+4:]) // first entry's child
	}
}

// attrBlock reads attribute fork block blk and checks its header.
func (f *FS) attrBlock(ex []extent, blk uint32) ([]byte, error) {
	b := make([]byte, f.sb.blockSize)
	if err := f.readFork(ex, b, int64(blk)*f.sb.blockSize); err != nil {
		return nil, err
	}
	magic := be.Uint16(b[8:])
	switch {
	case f.sb.version == 4 && (magic == 0xfbee || magic == 0xfebe):
	case f.sb.version == 5 && (magic == 0x3bee || magic == 0x3ebe):
		if !crcOK(b, 12) {
			return nil, fmt.Errorf("attr block %d: checksum mismatch: %w", blk, ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("attr block %d: magic %#x: %w", blk, magic, ErrCorrupt)
	}
	return b, nil
}

func (f *FS) attrLeaf(in *inode, ex []extent, b []byte, blk uint32) ([]xattr, error) {
	hdr := 32
	if f.sb.version == 5 {
		hdr = 80
	}
	cnt := int(be.Uint16(b[hdr-20:])) // count: at 12 (v4) or 56 (v5)
	if f.sb.version == 5 {
		cnt = int(be.Uint16(b[56:]))
	}
	if hdr+cnt*8 > len(b) {
		return nil, fmt.Errorf("attr leaf %d: %d entries: %w", blk, cnt, ErrCorrupt)
	}
	var out []xattr
	for i := 0; i < cnt; i++ {
		e := b[hdr+i*8:]
		idx, fl := int(be.Uint16(e[4:])), e[6]
		if idx < hdr || idx+8 > len(b) {
			return nil, fmt.Errorf("attr leaf %d entry %d at %d: %w", blk, i, idx, ErrCorrupt)
		}
		v := b[idx:]
		if fl&attrLocal != 0 {
			vl, nl := int(be.Uint16(v)), int(v[2])
			if idx+3+nl+vl > len(b) {
				return nil, fmt.Errorf("attr leaf %d entry %d: %w", blk, i, ErrCorrupt)
			}
			if n, ok := attrName(fl, v[3:3+nl]); ok {
				out = append(out, xattr{n, clone(v[3+nl : 3+nl+vl])})
			}
			continue
		}
		vblk, vl, nl := be.Uint32(v), int(be.Uint32(v[4:])), int(v[8])
		if idx+9+nl > len(b) || vl > 1<<26 {
			return nil, fmt.Errorf("attr leaf %d entry %d: %w", blk, i, ErrCorrupt)
		}
		n, ok := attrName(fl, v[9:9+nl])
		if !ok {
			continue
		}
		val, err := f.remoteValue(in, ex, vblk, vl)
		if err != nil {
			return nil, fmt.Errorf("attr %s: %w", n, err)
		}
		out = append(out, xattr{n, val})
	}
	return out, nil
}

// remoteValue reads a value kept in blocks of its own (v5: each block
// starts with an XARM header).
func (f *FS) remoteValue(in *inode, ex []extent, blk uint32, n int) ([]byte, error) {
	bs := int(f.sb.blockSize)
	per := bs
	if f.sb.version == 5 {
		per = bs - 56
	}
	out := make([]byte, 0, n)
	b := make([]byte, bs)
	for len(out) < n {
		if err := f.readFork(ex, b, int64(blk)*int64(bs)); err != nil {
			return nil, err
		}
		data := b
		if f.sb.version == 5 {
			if string(b[:4]) != "XARM" || !crcOK(b, 12) || be.Uint64(b[32:]) != in.ino {
				return nil, fmt.Errorf("remote value block %d: bad header: %w", blk, ErrCorrupt)
			}
			data = b[56:]
		}
		out = append(out, data[:min(per, n-len(out))]...)
		blk++
	}
	return out, nil
}
