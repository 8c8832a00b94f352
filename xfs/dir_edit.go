package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Inode fields set when an inode is made.
const (
	diGen      = 92
	diUnlinked = 96
	diLSN      = 112
	diCrtime   = 144
	diIno      = 152
	diUUID     = 160

	sbUUID     = 32
	sbMetaUUID = 248
	ftypeReg   = 1
)

// errSFFull: a short-form directory outgrew its inode (wblock.go makes
// it a block).
var errSFFull = errors.New("short-form directory outgrows its inode")

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00"):
		return syscall.EINVAL
	case len(name) > 255:
		return syscall.ENAMETOOLONG
	}
	return nil
}

// sfDir is a short-form directory decoded for changing.
type sfDir struct {
	parent []byte // the header: counts and parent inode number
	isz    int
	ents   []sfEnt
	block  *blockDir // set for a block-form directory (wblock.go)
	leaf   *leafDir  // set for a leaf-form directory (wleaf.go)
}

type sfEnt struct {
	blk  int // leaf form: the data block holding it, -1 for a new one
	name string
	off  uint16
	ft   byte
	ino  uint64
}

// loadSF decodes directory r's short-form fork; other forms are refused.
func (f *FS) loadSF(r *rawInode) (*sfDir, error) {
	if r.mode()&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, syscall.ENOTDIR
	}
	if r.format() != fmtLocal {
		return f.loadBlockDir(r)
	}
	fork := r.fork()
	size := r.size()
	if size < 6 || size > int64(len(fork)) {
		return nil, fmt.Errorf("xfs: short-form directory %d of %d bytes: %w", r.ino, size, ErrCorrupt)
	}
	b := fork[:size]
	d := &sfDir{isz: 4}
	count := int(b[0])
	if b[1] != 0 {
		count, d.isz = int(b[1]), 8
	}
	d.parent = append([]byte(nil), b[:2+d.isz]...)
	p := 2 + d.isz
	for i := 0; i < count; i++ {
		if p+3 > len(b) {
			return nil, fmt.Errorf("xfs: short-form directory %d: entry past the end: %w", r.ino, ErrCorrupt)
		}
		n := int(b[p])
		e := sfEnt{off: be.Uint16(b[p+1:])}
		p += 3
		if n == 0 || p+n+ftLen(f)+d.isz > len(b) {
			return nil, fmt.Errorf("xfs: short-form directory %d: entry past the end: %w", r.ino, ErrCorrupt)
		}
		e.name = string(b[p : p+n])
		if f.sb.ftype {
			e.ft = b[p+n]
			p++
		}
		e.ino = readIno(b[p+n:], d.isz)
		p += n + d.isz
		d.ents = append(d.ents, e)
	}
	return d, nil
}

// fork is the inode's data fork literal area.
func (r *rawInode) fork() []byte {
	fork := r.b[r.core():]
	if fo := int(r.b[diForkoff]) * 8; fo > 0 && fo < len(fork) {
		fork = fork[:fo]
	}
	return fork
}

func (d *sfDir) find(name string) int {
	for i, e := range d.ents {
		if e.name == name {
			return i
		}
	}
	return -1
}

// ftLen is the size of a directory entry's file type: 1, or 0 when the
// file system keeps none.
func ftLen(f *FS) int {
	if f.sb.ftype {
		return 1
	}
	return 0
}

// encode writes the directory back into r's fork, or refuses when it no
// longer fits the inode (conversion to block form is not done).
func (d *sfDir) encode(f *FS, r *rawInode) error {
	var b bytes.Buffer
	hdr := append([]byte(nil), d.parent...)
	if d.isz == 8 {
		hdr[1] = byte(len(d.ents))
	} else {
		hdr[0] = byte(len(d.ents))
	}
	b.Write(hdr)
	for _, e := range d.ents {
		b.WriteByte(byte(len(e.name)))
		b.Write([]byte{byte(e.off >> 8), byte(e.off)})
		b.WriteString(e.name)
		if f.sb.ftype {
			b.WriteByte(e.ft)
		}
		ino := make([]byte, 8)
		be.PutUint64(ino, e.ino)
		b.Write(ino[8-d.isz:])
	}
	fork := r.fork()
	if b.Len() > len(fork) {
		return errSFFull
	}
	clear(fork)
	copy(fork, b.Bytes())
	be.PutUint64(r.b[diSize:], uint64(b.Len()))
	return nil
}

// newInode builds a fresh v3 inode for ino (its slot's generation and
// LSN kept), owned by root, empty, with the file system's time format.
func (f *FS) newInode(ino uint64, mode uint16) (*rawInode, error) {
	off, ok := f.sb.inoToByte(ino)
	if !ok {
		return nil, fmt.Errorf("xfs: inode %d outside the file system: %w", ino, ErrCorrupt)
	}
	old := make([]byte, f.sb.inodeSize)
	if _, err := f.dev.ReadAt(old, off); err != nil {
		return nil, fmt.Errorf("xfs: reading inode %d: %w", ino, err)
	}
	b := make([]byte, f.sb.inodeSize)
	b[0], b[1], b[4], b[5], b[83] = 'I', 'N', f.inodeVersion(), fmtExtents, fmtExtents
	be.PutUint16(b[2:], mode)
	be.PutUint32(b[16:], 1)
	if old[0] == 'I' && old[1] == 'N' {
		be.PutUint32(b[diGen:], be.Uint32(old[diGen:])+1)
	}
	be.PutUint32(b[diUnlinked:], 0xffffffff)
	r := &rawInode{ino: ino, off: off, b: b}
	now := time.Now()
	for _, o := range []int{diAtime, diMtime, diCtime} {
		r.putTime(o, now)
	}
	if !f.v5() {
		return r, nil
	}
	if old[0] == 'I' && old[1] == 'N' {
		copy(b[diLSN:diLSN+8], old[diLSN:])
	}
	r.putTime(diCrtime, now)
	inc := be.Uint32(f.w.sb[216:])
	var fl2 uint64
	if inc&incompatBigtime != 0 {
		fl2 |= flags2Bigtime
	}
	if inc&incompatNrext64 != 0 {
		fl2 |= flags2Nrext64
	}
	be.PutUint64(b[diFlags2:], fl2)
	be.PutUint64(b[diIno:], ino)
	uuid := f.w.sb[sbUUID : sbUUID+16]
	if inc&incompatMetaUID != 0 {
		uuid = f.w.sb[sbMetaUUID : sbMetaUUID+16]
	}
	copy(b[diUUID:], uuid)
	return r, nil
}

// freeInode gives a last link's blocks and inode back and clears the
// inode as the kernel's ifree does (mode 0, empty forks, generation
// bumped), an attribute leaf's blocks included; blocks a reflinked file
// shares lose an owner instead. An attribute fork in a B+tree is refused.
func (f *FS) freeInode(r *rawInode, rc *refcounts, ins *inodes) error {
	sp := rc.sp
	switch {
	case r.b[diForkoff] != 0 && r.b[diAformat] != fmtLocal && r.anextents() != 0:
		_, ex, err := f.attrForkExtents(r)
		if err != nil {
			return err
		}
		if err := r.freeAttrBlocks(ex, sp); err != nil {
			return err
		}
	}
	if r.format() == fmtExtents || r.format() == fmtBtree {
		for _, e := range r.ex {
			if err := rc.release(r, e.start, e.count, e.off); err != nil {
				return err
			}
		}
		for _, b := range r.bmbt {
			if err := sp.free(b, 1, bmbtOwner(r.ino)); err != nil {
				return err
			}
		}
	}
	if err := ins.free(r.ino); err != nil {
		return err
	}
	b := r.b
	r.ex, r.bmbt = nil, nil
	if b[4] != 3 { // v2: the core up to di_next_unlinked
		gen := be.Uint32(b[diGen:])
		clear(b)
		b[0], b[1], b[4], b[5], b[83] = 'I', 'N', 2, fmtExtents, fmtExtents
		be.PutUint32(b[diGen:], gen+1)
		be.PutUint32(b[diUnlinked:], 0xffffffff)
		return nil
	}
	gen, lsn := be.Uint32(b[diGen:]), append([]byte(nil), b[diLSN:diLSN+8]...)
	fl2 := r.flags2() & (flags2Bigtime | flags2Nrext64)
	ino, uuid := be.Uint64(b[diIno:]), append([]byte(nil), b[diUUID:diUUID+16]...)
	cc := be.Uint64(b[diChangecount:])
	clear(b)
	b[0], b[1], b[4], b[5], b[83] = 'I', 'N', 3, fmtExtents, fmtExtents
	be.PutUint32(b[diGen:], gen+1)
	be.PutUint32(b[diUnlinked:], 0xffffffff)
	be.PutUint64(b[diChangecount:], cc)
	copy(b[diLSN:], lsn)
	be.PutUint64(b[diFlags2:], fl2)
	be.PutUint64(b[diIno:], ino)
	copy(b[diUUID:], uuid)
	return nil
}
