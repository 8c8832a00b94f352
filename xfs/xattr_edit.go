package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// Extended attributes are written in short form when they fit: the
// attribute fork in the inode after di_forkoff, a 4-byte header (total
// size, count) and entries of name length, value length, namespace
// flags, name, value. The fork is moved (di_forkoff) as the attributes
// grow or shrink, with the data fork keeping what it holds; the last
// attribute removed removes the fork, as the kernel does. Attributes
// that do not fit the inode go to a leaf block (xattr_leaf_edit.go).

const (
	diAformat     = 83
	diAnextents   = 80
	diBigAnext    = 76
	attrSFHdr     = 4
	maxSFAttrLen  = 255
	maxXattrValue = 64 << 10 // XATTR_SIZE_MAX
)

// errSFAttrsFull: the attributes do not fit the inode in short form.
var errSFAttrsFull = errors.New("xfs: attributes do not fit the inode")

type sfAttr struct {
	flags       byte
	name, value []byte
}

// attrNS splits a Linux xattr name into XFS's namespace flag and name.
func attrNS(name string) (byte, string, error) {
	for _, ns := range []struct {
		prefix string
		flag   byte
	}{{"user.", 0}, {"trusted.", attrRoot}, {"security.", attrSecure}} {
		if n, ok := strings.CutPrefix(name, ns.prefix); ok {
			if n == "" || len(n) > maxSFAttrLen {
				return 0, "", syscall.EINVAL
			}
			return ns.flag, n, nil
		}
	}
	return 0, "", fmt.Errorf("xfs: attribute %q: only user., trusted. and security. attributes are written by offvm (POSIX ACLs are not): %w", name, syscall.EOPNOTSUPP)
}

func (f *FS) SetXattr(ino volume.Ino, name string, value []byte) error {
	fl, n, err := attrNS(name)
	if err != nil {
		return err
	}
	if len(value) > maxXattrValue {
		return fmt.Errorf("xfs: attribute %s of %d bytes: more than Linux's %d: %w", name, len(value), maxXattrValue, syscall.E2BIG)
	}
	return f.editAttrs(uint64(ino), func(as []sfAttr) ([]sfAttr, error) {
		if i := findAttr(as, fl, n); i >= 0 {
			as[i].value = value
			return as, nil
		}
		return append(as, sfAttr{fl, []byte(n), value}), nil
	})
}

func (f *FS) RemoveXattr(ino volume.Ino, name string) error {
	fl, n, err := attrNS(name)
	if err != nil {
		return err
	}
	return f.editAttrs(uint64(ino), func(as []sfAttr) ([]sfAttr, error) {
		i := findAttr(as, fl, n)
		if i < 0 {
			return nil, syscall.ENODATA
		}
		return append(as[:i], as[i+1:]...), nil
	})
}

func findAttr(as []sfAttr, fl byte, name string) int {
	for i, a := range as {
		if a.flags&(attrRoot|attrSecure) == fl && string(a.name) == name {
			return i
		}
	}
	return -1
}

// editAttrs changes ino's attributes and its ctime in one txn: the
// inode, and the attribute blocks and free space when they are in a
// leaf before or after.
func (f *FS) editAttrs(ino uint64, edit func([]sfAttr) ([]sfAttr, error)) error {
	if _, err := f.begin(); err != nil {
		return err
	}
	defer f.end(ino)
	r, err := f.loadRaw(ino)
	if err != nil {
		return err
	}
	as, old, err := f.loadAttrs(r)
	if err != nil {
		return err
	}
	if as, err = edit(as); err != nil {
		return err
	}
	sp := f.newSpace()
	t := &txn{f: f}
	if err := f.putAllAttrs(r, as, old, sp, t); err != nil {
		return err
	}
	r.putTime(diCtime, time.Now())
	if err := sp.queue(t); err != nil {
		return err
	}
	t.putSuper(f.w, sp.delta, 0)
	if err := r.queue(f, t, false); err != nil {
		return err
	}
	if err := t.commit(); err != nil {
		return err
	}
	f.w.committed(sp.delta, 0)
	return nil
}

// loadAttrs reads r's attributes in short form or in one leaf, and the
// extents of the leaf's fork.
func (f *FS) loadAttrs(r *rawInode) ([]sfAttr, []extent, error) {
	switch {
	case r.b[diForkoff] == 0 || r.b[diAformat] == fmtLocal:
		as, err := r.sfAttrs()
		return as, nil, err
	case r.b[diAformat] == fmtExtents || r.b[diAformat] == fmtBtree:
		return f.blockAttrs(r)
	}
	return nil, nil, fmt.Errorf("xfs: inode %d: attribute fork format %d: %w", r.ino, r.b[diAformat], ErrCorrupt)
}

// putAllAttrs gives the old leaf's blocks back and writes as in short
// form when they fit the inode, else in a new leaf.
func (f *FS) putAllAttrs(r *rawInode, as []sfAttr, old []extent, sp *space, t *txn) error {
	if len(old) > 0 {
		if err := r.freeAttrBlocks(old, sp); err != nil {
			return err
		}
	}
	err := r.putAttrs(as)
	if err != errSFAttrsFull {
		return err
	}
	l, err := f.layoutLeaf(r, as)
	if err != nil {
		return err
	}
	return f.putLeafAttrs(r, l, sp, t)
}

// sfAttrs decodes a short-form attribute fork.
func (r *rawInode) sfAttrs() ([]sfAttr, error) {
	fo := int(r.b[diForkoff]) * 8
	if fo == 0 {
		return nil, nil
	}
	b := r.b[r.core()+fo:]
	total, count := int(be.Uint16(b)), int(b[2])
	if total < attrSFHdr || total > len(b) {
		return nil, fmt.Errorf("xfs: inode %d: short-form attributes of %d bytes: %w", r.ino, total, ErrCorrupt)
	}
	var out []sfAttr
	for p, i := attrSFHdr, 0; i < count; i++ {
		if p+3 > total || p+3+int(b[p])+int(b[p+1]) > total {
			return nil, fmt.Errorf("xfs: inode %d: short-form attribute %d past the end: %w", r.ino, i, ErrCorrupt)
		}
		nl, vl := int(b[p]), int(b[p+1])
		out = append(out, sfAttr{b[p+2], clone(b[p+3 : p+3+nl]), clone(b[p+3+nl : p+3+nl+vl])})
		p += 3 + nl + vl
	}
	return out, nil
}

func (r *rawInode) anextents() uint64 {
	if r.flags2()&flags2Nrext64 != 0 {
		return uint64(be.Uint32(r.b[diBigAnext:]))
	}
	return uint64(be.Uint16(r.b[diAnextents:]))
}

// dataNeed is how many bytes of the literal area the data fork needs.
func (r *rawInode) dataNeed() (int, error) {
	switch r.format() {
	case fmtDev:
		return 8, nil
	case fmtLocal:
		return (int(r.size()) + 7) &^ 7, nil
	case fmtExtents:
		return len(r.ex) * 16, nil
	}
	return 0, fmt.Errorf("xfs: inode %d is B+tree-mapped; moving its attribute fork is not done by offvm: %w", r.ino, syscall.EOPNOTSUPP)
}

// putAttrs writes as into the attribute fork, moving di_forkoff when
// they outgrow it, or removes the fork when as is empty.
func (r *rawInode) putAttrs(as []sfAttr) error {
	lit := r.b[r.core():]
	fo := int(r.b[diForkoff]) * 8
	if len(as) == 0 {
		if fo > 0 {
			clear(lit[fo:])
		}
		r.b[diForkoff], r.b[diAformat] = 0, fmtExtents
		return nil
	}
	var e bytes.Buffer
	for _, a := range as {
		if len(a.value) > maxSFAttrLen {
			return errSFAttrsFull
		}
		e.Write([]byte{byte(len(a.name)), byte(len(a.value)), a.flags})
		e.Write(a.name)
		e.Write(a.value)
	}
	total := attrSFHdr + e.Len()
	need, err := r.dataNeed()
	if err != nil {
		return err
	}
	if fo == 0 || len(lit)-fo < total {
		fo = (len(lit) - total) &^ 7
		if r.format() == fmtDev {
			fo = 8 // the kernel's verifier wants exactly this
		}
		if fo < need || len(lit)-fo < total || fo <= 0 {
			return errSFAttrsFull
		}
	}
	clear(lit[need:])
	af := lit[fo:]
	be.PutUint16(af, uint16(total))
	af[2] = byte(len(as))
	copy(af[attrSFHdr:], e.Bytes())
	r.b[diForkoff], r.b[diAformat] = byte(fo/8), fmtLocal
	return nil
}
