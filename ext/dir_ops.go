package ext

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// The capabilities ext's writer has; extended attributes are not written
// yet (the FUSE tree answers ENOTSUP for them).
var (
	_ volume.Writer     = (*FS)(nil)
	_ volume.Linker     = (*FS)(nil)
	_ volume.Symlinker  = (*FS)(nil)
	_ volume.Timer      = (*FS)(nil)
	_ volume.ModeWriter = (*FS)(nil)
)

const maxLinks = 65000 // EXT4_LINK_MAX

// locked runs op under the write lock, then returns the attributes of
// the inode it names.
func (f *FS) locked(op func() (uint32, error)) (volume.Attr, error) {
	if _, err := f.begin(); err != nil {
		return volume.Attr{}, err
	}
	ino, err := func() (uint32, error) {
		defer f.end()
		return op()
	}()
	if err != nil {
		return volume.Attr{}, err
	}
	return f.GetAttr(volume.Ino(ino))
}

// permBits turns an os.FileMode's permission bits into i_mode's; zero
// means the 0644 a package manager would give.
func modeBits(m os.FileMode, def uint16) uint16 {
	p := uint16(m.Perm())
	if m&os.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	if p == 0 {
		p = def
	}
	return p
}

func (f *FS) inoArg(ino volume.Ino) (uint32, error) {
	if ino == 0 || ino > volume.Ino(f.sb.inodesCount) {
		return 0, fmt.Errorf("ext: inode %d out of range: %w", ino, syscall.ENOENT)
	}
	return uint32(ino), nil
}

// parentFor checks name and that it is absent from dir, and loads dir.
func (f *FS) parentFor(dir volume.Ino, name string) (*rino, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	d, err := f.inoArg(dir)
	if err != nil {
		return nil, err
	}
	p, err := f.dirForWrite(d)
	if err != nil {
		return nil, err
	}
	if _, _, ok, err := f.findEntry(p, name); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("ext: %q already in directory %d: %w", name, dir, syscall.EEXIST)
	}
	return p, nil
}

func touch(r *rino) {
	now := time.Now()
	r.setMtime(now)
	r.setCtime(now)
}

// Create makes an empty regular file, root-owned.
func (f *FS) Create(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return f.locked(func() (uint32, error) {
		p, err := f.parentFor(dir, name)
		if err != nil {
			return 0, err
		}
		r, err := f.newInode(p.ino, sIFREG|modeBits(mode, 0o644))
		if err != nil {
			return 0, err
		}
		if err := f.storeRaw(r); err != nil {
			return 0, err
		}
		touch(p)
		return r.ino, f.addEntry(p, name, r.ino, ftReg)
	})
}

// Mkdir makes a directory with its "." and ".." entries.
func (f *FS) Mkdir(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return f.locked(func() (uint32, error) {
		p, err := f.parentFor(dir, name)
		if err != nil {
			return 0, err
		}
		if p.links() >= maxLinks {
			return 0, fmt.Errorf("ext: directory %d has %d links: %w", dir, p.links(), syscall.EMLINK)
		}
		r, err := f.newInode(p.ino, sIFDIR|modeBits(mode, 0o755))
		if err != nil {
			return 0, err
		}
		r.setLinks(2)
		err = f.appendDirBlock(r, func(b []byte) {
			putDirent(b, r.ino, 12, ".", ftDir)
			putDirent(b[12:], p.ino, f.usable()-12, "..", ftDir)
		})
		if err != nil {
			return 0, err
		}
		p.setLinks(p.links() + 1)
		touch(p)
		return r.ino, f.addEntry(p, name, r.ino, ftDir)
	})
}

// Symlink makes a symbolic link: in i_block when shorter than 60 bytes,
// else in a data block.
func (f *FS) Symlink(dir volume.Ino, name, target string) (volume.Attr, error) {
	return f.locked(func() (uint32, error) {
		if target == "" || len(target) >= int(f.sb.blockSize) {
			return 0, fmt.Errorf("ext: symlink target of %d bytes: %w", len(target), syscall.ENAMETOOLONG)
		}
		p, err := f.parentFor(dir, name)
		if err != nil {
			return 0, err
		}
		r, err := f.newInode(p.ino, sIFLNK|0o777)
		if err != nil {
			return 0, err
		}
		if len(target) < 60 {
			r.setFlags(0)
			clear(r.iblock())
			copy(r.iblock(), target)
			r.setSize(uint64(len(target)))
			err = f.storeRaw(r)
		} else {
			err = f.writeData(r, []byte(target), 0)
		}
		if err != nil {
			return 0, err
		}
		touch(p)
		return r.ino, f.addEntry(p, name, r.ino, ftSymlink)
	})
}

// Link adds a name for an existing file (not a directory).
func (f *FS) Link(ino volume.Ino, dir volume.Ino, name string) (volume.Attr, error) {
	return f.locked(func() (uint32, error) {
		n, err := f.inoArg(ino)
		if err != nil {
			return 0, err
		}
		r, err := f.loadRaw(n)
		if err != nil {
			return 0, err
		}
		if r.isDir() {
			return 0, fmt.Errorf("ext: inode %d is a directory: %w", ino, syscall.EPERM)
		}
		if r.links() >= maxLinks {
			return 0, fmt.Errorf("ext: inode %d has %d links: %w", ino, r.links(), syscall.EMLINK)
		}
		p, err := f.parentFor(dir, name)
		if err != nil {
			return 0, err
		}
		r.setLinks(r.links() + 1)
		r.setCtime(time.Now())
		if err := f.storeRaw(r); err != nil {
			return 0, err
		}
		touch(p)
		return n, f.addEntry(p, name, n, ftypeOf(r.mode()))
	})
}

// childOf loads the inode name points to in directory p.
func (f *FS) childOf(p *rino, name string) (*rino, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	n, _, ok, err := f.findEntry(p, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("ext: %q not in directory %d: %w", name, p.ino, syscall.ENOENT)
	}
	return f.loadRaw(n)
}

// dropLink takes one link from r, releasing it at zero.
func (f *FS) dropLink(r *rino) error {
	if r.isDir() || r.links() <= 1 {
		return f.release(r)
	}
	r.setLinks(r.links() - 1)
	r.setCtime(time.Now())
	return f.storeRaw(r)
}

// entryForWrite finds the writable directory dir and the inode its entry
// name points at: what Unlink and Rmdir both start from.
func (f *FS) entryForWrite(dir volume.Ino, name string) (p, c *rino, err error) {
	d, err := f.inoArg(dir)
	if err != nil {
		return nil, nil, err
	}
	if p, err = f.dirForWrite(d); err != nil {
		return nil, nil, err
	}
	if c, err = f.childOf(p, name); err != nil {
		return nil, nil, err
	}
	return p, c, nil
}

// Unlink removes a name of a file that is not a directory.
func (f *FS) Unlink(dir volume.Ino, name string) error {
	_, err := f.locked(func() (uint32, error) {
		p, c, err := f.entryForWrite(dir, name)
		if err != nil {
			return 0, err
		}
		if c.isDir() {
			return 0, fmt.Errorf("ext: %q is a directory: %w", name, syscall.EISDIR)
		}
		if err := f.removeEntry(p, name); err != nil {
			return 0, err
		}
		touch(p)
		if err := f.storeRaw(p); err != nil {
			return 0, err
		}
		return p.ino, f.dropLink(c)
	})
	return err
}

// Rmdir removes an empty directory.
func (f *FS) Rmdir(dir volume.Ino, name string) error {
	_, err := f.locked(func() (uint32, error) {
		p, c, err := f.entryForWrite(dir, name)
		if err != nil {
			return 0, err
		}
		if !c.isDir() {
			return 0, fmt.Errorf("ext: %q is not a directory: %w", name, syscall.ENOTDIR)
		}
		if err := f.checkEmpty(c); err != nil {
			return 0, err
		}
		if err := f.removeEntry(p, name); err != nil {
			return 0, err
		}
		p.setLinks(p.links() - 1)
		touch(p)
		if err := f.storeRaw(p); err != nil {
			return 0, err
		}
		return p.ino, f.release(c)
	})
	return err
}

func (f *FS) checkEmpty(c *rino) error {
	if !c.hasExtents() {
		return fmt.Errorf("ext: directory %d: ext2/ext3 block-mapped files are read-only in offvm: %w", c.ino, syscall.EROFS)
	}
	empty, err := f.isEmptyDir(c)
	if err == nil && !empty {
		err = fmt.Errorf("ext: directory %d is not empty: %w", c.ino, syscall.ENOTEMPTY)
	}
	return err
}

// SetTimes changes atime and/or mtime; ctime becomes now.
func (f *FS) SetTimes(ino volume.Ino, atime, mtime *time.Time) error {
	return f.editInode(ino, func(r *rino) {
		if atime != nil {
			r.setAtime(*atime)
		}
		if mtime != nil {
			r.setMtime(*mtime)
		}
	})
}
