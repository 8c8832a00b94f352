package xfs

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// nsOp is one change of names: every inode it touches is loaded once,
// changed in memory, and written in one txn with the inode and
// free-space B+trees.
type nsOp struct {
	f     *FS
	raws  map[uint64]*rawInode
	order []uint64
	sfs   map[uint64]*sfDir
	sp    *space
	ins   *inodes
	rc    *refcounts // reflinked files' shared blocks, when one is freed
	now   time.Time
	// blocks are new metadata blocks (remote symlink targets) written
	// before the inodes that name them
	blocks []pending
}

func (f *FS) newNS() *nsOp {
	sp := f.newSpace()
	return &nsOp{f: f, raws: map[uint64]*rawInode{}, sfs: map[uint64]*sfDir{}, sp: sp, ins: f.newInodes(sp), rc: sp.refcounts(), now: time.Now()}
}

func (o *nsOp) raw(ino uint64) (*rawInode, error) {
	if r, ok := o.raws[ino]; ok {
		return r, nil
	}
	r, err := o.f.loadRaw(ino)
	if err != nil {
		return nil, err
	}
	o.add(r)
	return r, nil
}

func (o *nsOp) add(r *rawInode) {
	o.raws[r.ino] = r
	o.order = append(o.order, r.ino)
}

// dir loads a short-form directory for changing; its times are set.
func (o *nsOp) dir(ino uint64) (*rawInode, *sfDir, error) {
	r, err := o.raw(ino)
	if err != nil {
		return nil, nil, err
	}
	if d, ok := o.sfs[ino]; ok {
		return r, d, nil
	}
	d, err := o.f.loadSF(r)
	if err != nil {
		return nil, nil, err
	}
	o.sfs[ino] = d
	r.putTime(diMtime, o.now)
	r.putTime(diCtime, o.now)
	return r, d, nil
}

func (o *nsOp) addEnt(dir uint64, d *sfDir, name string, ft byte, ino uint64) error {
	if d.find(name) >= 0 {
		return syscall.EEXIST
	}
	if d.block != nil || d.leaf != nil {
		d.ents = append(d.ents, sfEnt{name: name, ft: ft, ino: ino, blk: -1})
		return nil // encodeBlock and encodeLeaf check that it fits
	}
	if d.isz == 4 && ino >= 1<<32 {
		return fmt.Errorf("xfs: inode %d needs 8-byte numbers in directory %d, which offvm does not convert: %w", ino, dir, syscall.EOPNOTSUPP)
	}
	off := o.f.dirFirst()
	if n := len(d.ents); n > 0 {
		off = d.ents[n-1].off + uint16(o.f.dataEntSize(len(d.ents[n-1].name)))
	}
	if int64(off)+int64(o.f.dataEntSize(len(name))) > o.f.sb.dirBlkSize/2 {
		return fmt.Errorf("xfs: directory %d would outgrow short form: %w", dir, syscall.EOPNOTSUPP)
	}
	d.ents = append(d.ents, sfEnt{name: name, off: off, ft: ft, ino: ino})
	return nil
}

func addNlink(r *rawInode, d int32) { be.PutUint32(r.b[16:], uint32(int32(be.Uint32(r.b[16:]))+d)) }

// dropLink removes one link to r; the last frees it. Directories (whose
// emptiness the caller checked) go at once.
func (o *nsOp) dropLink(r *rawInode) error {
	r.putTime(diCtime, o.now)
	if r.mode()&syscall.S_IFMT != syscall.S_IFDIR && be.Uint32(r.b[16:]) > 1 {
		addNlink(r, -1)
		return nil
	}
	return o.f.freeInode(r, o.rc, o.ins)
}

// newChild allocates and builds an inode near dir.
func (o *nsOp) newChild(dir uint64, mode uint16) (*rawInode, error) {
	f := o.f
	ino, err := o.ins.alloc(uint32(dir >> (f.sb.agBlkLog + f.sb.inoPBLog)))
	if err != nil {
		return nil, err
	}
	r, err := f.newInode(ino, mode)
	if err != nil {
		return nil, err
	}
	o.add(r)
	return r, nil
}

func (o *nsOp) commit() error {
	f := o.f
	t := &txn{f: f, writes: o.blocks}
	for ino, d := range o.sfs {
		if d.leaf != nil {
			if err := o.encodeLeaf(o.raws[ino], d, t); err != nil {
				return err
			}
		} else if d.block != nil {
			err := d.encodeBlock(f, o.raws[ino], t)
			if err == errBlockFull {
				err = o.blockToLeaf(o.raws[ino], d, t)
			}
			if err != nil {
				return err
			}
		} else if err := d.encode(f, o.raws[ino]); err == errSFFull {
			if err := o.toBlock(o.raws[ino], d, t); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	for _, ino := range o.order {
		if r := o.raws[ino]; r.remap && r.b[1] == 'N' && r.mode() != 0 {
			if err := f.layoutMap(r, o.sp, t); err != nil {
				return err
			}
		}
	}
	if err := o.ins.queue(t); err != nil { // takes and frees tree blocks in o.sp
		return err
	}
	if err := o.rc.queue(t); err != nil { // so does the refcount tree
		return err
	}
	if err := o.sp.queue(t); err != nil {
		return err
	}
	for _, ino := range o.order {
		if err := o.raws[ino].queue(f, t, o.raws[ino].remap); err != nil {
			return err
		}
	}
	t.putSuperCounts(f.w, o.sp.delta, o.ins.delta, o.ins.icount)
	if err := t.commit(); err != nil {
		return err
	}
	f.w.committedCounts(o.sp.delta, o.ins.delta, o.ins.icount)
	return nil
}

// run does one name change under the write lock, dropping the caches
// of every inode it touched.
func (f *FS) run(names []string, fn func(o *nsOp) error) error {
	if _, err := f.begin(); err != nil {
		return err
	}
	o := f.newNS()
	defer func() { f.end(o.order...) }()
	for _, n := range names {
		if err := checkName(n); err != nil {
			return err
		}
	}
	if err := fn(o); err != nil {
		return err
	}
	return o.commit()
}

var ftypeOf = map[uint16]byte{syscall.S_IFREG: 1, syscall.S_IFDIR: 2, syscall.S_IFCHR: 3, syscall.S_IFBLK: 4, syscall.S_IFIFO: 5, syscall.S_IFSOCK: 6, syscall.S_IFLNK: 7}

// make adds a new inode of mode under name; fill sets its content.
func (f *FS) make(dir uint64, name string, mode uint16, fill func(o *nsOp, r *rawInode) error) (volume.Attr, error) {
	var ino uint64
	err := f.run([]string{name}, func(o *nsOp) error {
		_, d, err := o.dir(dir)
		if err != nil {
			return err
		}
		if d.find(name) >= 0 {
			return syscall.EEXIST
		}
		r, err := o.newChild(dir, mode)
		if err != nil {
			return err
		}
		ino = r.ino
		if fill != nil {
			if err := fill(o, r); err != nil {
				return err
			}
		}
		return o.addEnt(dir, d, name, ftypeOf[mode&syscall.S_IFMT], r.ino)
	})
	if err != nil {
		return volume.Attr{}, err
	}
	return f.GetAttr(volume.Ino(ino))
}

func (f *FS) Create(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return f.make(uint64(dir), name, syscall.S_IFREG|uint16(mode.Perm()), nil)
}

func (f *FS) Mkdir(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return f.make(uint64(dir), name, syscall.S_IFDIR|uint16(mode.Perm()), func(o *nsOp, r *rawInode) error {
		pr, _, _ := o.dir(uint64(dir))
		if pr.ino >= 1<<32 {
			return fmt.Errorf("xfs: 8-byte inode numbers in short-form directories are not written by offvm: %w", syscall.EOPNOTSUPP)
		}
		r.b[5] = fmtLocal
		nd := &sfDir{parent: []byte{0, 0, 0, 0, 0, 0}, isz: 4}
		be.PutUint32(nd.parent[2:], uint32(pr.ino))
		o.sfs[r.ino] = nd
		be.PutUint32(r.b[16:], 2)
		addNlink(pr, 1)
		return nil
	})
}

func (f *FS) Symlink(dir volume.Ino, name, target string) (volume.Attr, error) {
	if target == "" || len(target) > 1024 {
		return volume.Attr{}, syscall.EINVAL
	}
	return f.make(uint64(dir), name, syscall.S_IFLNK|0o777, func(o *nsOp, r *rawInode) error {
		fork := r.fork()
		if len(target) > len(fork) {
			return o.remoteSymlink(r, target)
		}
		r.b[5] = fmtLocal
		copy(fork, target)
		be.PutUint64(r.b[diSize:], uint64(len(target)))
		return nil
	})
}

func (f *FS) Link(ino volume.Ino, dir volume.Ino, name string) (volume.Attr, error) {
	err := f.run([]string{name}, func(o *nsOp) error {
		_, d, err := o.dir(uint64(dir))
		if err != nil {
			return err
		}
		r, err := o.raw(uint64(ino))
		if err != nil {
			return err
		}
		if r.mode()&syscall.S_IFMT == syscall.S_IFDIR {
			return syscall.EPERM
		}
		addNlink(r, 1)
		r.putTime(diCtime, o.now)
		return o.addEnt(uint64(dir), d, name, ftypeOf[r.mode()&syscall.S_IFMT], r.ino)
	})
	if err != nil {
		return volume.Attr{}, err
	}
	return f.GetAttr(ino)
}

// remove takes name out of dir: a non-directory (dirs false) or an
// empty directory (dirs true).
func (o *nsOp) remove(dir uint64, name string, dirs bool) error {
	pr, d, err := o.dir(dir)
	if err != nil {
		return err
	}
	i := d.find(name)
	if i < 0 {
		return syscall.ENOENT
	}
	r, err := o.raw(d.ents[i].ino)
	if err != nil {
		return err
	}
	isDir := r.mode()&syscall.S_IFMT == syscall.S_IFDIR
	switch {
	case isDir && !dirs:
		return syscall.EISDIR
	case !isDir && dirs:
		return syscall.ENOTDIR
	case isDir:
		if err := o.empty(r); err != nil {
			return err
		}
		addNlink(pr, -1)
	}
	d.ents = append(d.ents[:i], d.ents[i+1:]...)
	return o.dropLink(r)
}

// empty is nil for an empty directory.
func (o *nsOp) empty(r *rawInode) error {
	cd, err := o.f.loadSF(r)
	if err != nil {
		return err
	}
	if len(cd.ents) > 0 {
		return syscall.ENOTEMPTY
	}
	return nil
}

func (f *FS) Unlink(dir volume.Ino, name string) error {
	return f.run([]string{name}, func(o *nsOp) error { return o.remove(uint64(dir), name, false) })
}

func (f *FS) Rmdir(dir volume.Ino, name string) error {
	return f.run([]string{name}, func(o *nsOp) error { return o.remove(uint64(dir), name, true) })
}

func (f *FS) Rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	return f.run([]string{oldName, newName}, func(o *nsOp) error {
		od, nd := uint64(oldDir), uint64(newDir)
		opr, osf, err := o.dir(od)
		if err != nil {
			return err
		}
		npr, nsf, err := o.dir(nd)
		if err != nil {
			return err
		}
		i := osf.find(oldName)
		if i < 0 {
			return syscall.ENOENT
		}
		e := osf.ents[i]
		src, err := o.raw(e.ino)
		if err != nil {
			return err
		}
		srcDir := src.mode()&syscall.S_IFMT == syscall.S_IFDIR
		if j := nsf.find(newName); j >= 0 {
			if nsf.ents[j].ino == e.ino {
				return nil // two names of one file: rename(2) does nothing
			}
			dst, err := o.raw(nsf.ents[j].ino)
			if err != nil {
				return err
			}
			dstDir := dst.mode()&syscall.S_IFMT == syscall.S_IFDIR
			switch {
			case srcDir && !dstDir:
				return syscall.ENOTDIR
			case !srcDir && dstDir:
				return syscall.EISDIR
			}
			if err := o.remove(nd, newName, dstDir); err != nil {
				return err
			}
		}
		if srcDir && od != nd {
			if err := o.notUnder(nd, e.ino); err != nil {
				return err
			}
			cd, err := o.f.loadSF(src)
			if err != nil {
				return err
			}
			if cd.isz != 8 && nd >= 1<<32 {
				return fmt.Errorf("xfs: 8-byte inode numbers in short-form directories are not written by offvm: %w", syscall.EOPNOTSUPP)
			}
			cd.setParent(nd)
			o.sfs[src.ino] = cd
			addNlink(opr, -1)
			addNlink(npr, 1)
		}
		i = osf.find(oldName)
		osf.ents = append(osf.ents[:i], osf.ents[i+1:]...)
		src.putTime(diCtime, o.now)
		return o.addEnt(nd, nsf, newName, e.ft, e.ino)
	})
}

// notUnder refuses to move directory ino into its own subtree: it walks
// from dir up through the parents to the root.
func (o *nsOp) notUnder(dir, ino uint64) error {
	for n := 0; n < 4096; n++ {
		if dir == ino {
			return syscall.EINVAL
		}
		if dir == o.f.sb.rootIno {
			return nil
		}
		r, err := o.f.loadRaw(dir)
		if err != nil {
			return err
		}
		d, err := o.f.loadSF(r)
		if err != nil {
			return err
		}
		dir = d.parentIno()
	}
	return fmt.Errorf("xfs: directory %d: parent chain too long: %w", dir, ErrCorrupt)
}
