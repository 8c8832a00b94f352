package ntfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// do runs one write operation under the write lock and commits its records.
func (v *Volume) do(fn func(o *op) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.beginWrite(); err != nil {
		return err
	}
	defer v.statCache.Store(nil)
	st := v.beginOp()
	o := v.newOp()
	err := fn(o)
	if err == nil {
		err = o.commit()
	}
	if err != nil {
		v.undoOp(st) // the volume is as before the operation
		return err
	}
	v.endOp()
	return nil
}

// attrAfter stats ino once the write lock is released.
func (v *Volume) attrAfter(ino uint64, err error) (volume.Attr, error) {
	if err != nil {
		return volume.Attr{}, err
	}
	return v.GetAttr(volume.Ino(ino))
}

// Create makes an empty file.
func (v *Volume) Create(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return v.create(dir, name, kindFile)
}

// create makes an empty file or directory named name in dir.
func (v *Volume) create(dir volume.Ino, name string, kind int) (volume.Attr, error) {
	var num uint64
	err := v.do(func(o *op) error {
		if err := v.checkAbsent(uint64(dir), name); err != nil {
			return err
		}
		r, dw, err := o.createRecord(uint64(dir), name, kind)
		if err != nil {
			return err
		}
		num = r.num
		return o.index(r, dw)
	})
	return v.attrAfter(num, err)
}

// index inserts a new record's only name into its directory.
func (o *op) index(r *record, dw *dirW) error {
	off := r.findAttr(atFileName, "", false)
	if err := dw.insert(fileRef(r), append([]byte(nil), r.residentValue(off)...)); err != nil {
		return err
	}
	return touch(dw.r)
}

// Mkdir makes an empty directory.
func (v *Volume) Mkdir(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	return v.create(dir, name, kindDir)
}

// Symlink makes an NTFS symbolic link (a reparse point).
func (v *Volume) Symlink(dir volume.Ino, name, target string) (volume.Attr, error) {
	var num uint64
	err := v.do(func(o *op) error {
		if err := v.checkAbsent(uint64(dir), name); err != nil {
			return err
		}
		if target == "" || len(target) > 4096 {
			return fmt.Errorf("ntfs: bad symlink target: %w", syscall.EINVAL)
		}
		r, dw, err := o.createRecord(uint64(dir), name, kindFile)
		if err != nil {
			return err
		}
		num = r.num
		si, _ := siValue(r)
		binary.LittleEndian.PutUint32(si[0x20:], faArchive|faReparse)
		if _, err := r.insertAttr(residentAttr(atReparse, "", symlinkReparse(target))); err != nil {
			return err
		}
		fn := r.residentValue(r.findAttr(atFileName, "", false))
		binary.LittleEndian.PutUint32(fn[0x38:], faArchive|faReparse)
		binary.LittleEndian.PutUint32(fn[0x3c:], tagSymlink)
		if err := o.index(r, dw); err != nil {
			return err
		}
		return o.addReparseEntry(tagSymlink, fileRef(r))
	})
	return v.attrAfter(num, err)
}

// Unlink removes a file name; the file goes with its last name.
func (v *Volume) Unlink(dir volume.Ino, name string) error {
	return v.do(func(o *op) error { return o.removeName(uint64(dir), name, false) })
}

// Rmdir removes an empty directory.
func (v *Volume) Rmdir(dir volume.Ino, name string) error {
	return v.do(func(o *op) error { return o.removeName(uint64(dir), name, true) })
}

// Rename moves a name, replacing an existing file as rename(2) does.
func (v *Volume) Rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	return v.do(func(o *op) error { return o.rename(uint64(oldDir), oldName, uint64(newDir), newName) })
}

// Link adds a hard link.
func (v *Volume) Link(ino volume.Ino, dir volume.Ino, name string) (volume.Attr, error) {
	err := v.do(func(o *op) error {
		if err := v.checkAbsent(uint64(dir), name); err != nil {
			return err
		}
		r, err := o.rec(uint64(ino))
		if err != nil {
			return err
		}
		if r.flags&recIsDir != 0 || r.num < firstUser {
			return fmt.Errorf("ntfs: cannot hard-link MFT record %d: %w", r.num, syscall.EPERM)
		}
		dw, err := o.dir(uint64(dir))
		if err != nil {
			return err
		}
		r.links++
		return o.link(r, dw, name)
	})
	return v.attrAfter(uint64(ino), err)
}

// fileRec opens a regular file's record for a data change.
func (o *op) fileRec(ino volume.Ino) (*record, error) {
	r, err := o.rec(uint64(ino))
	if err != nil {
		return nil, err
	}
	if r.flags&recIsDir != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is a directory: %w", r.num, syscall.EISDIR)
	}
	if uint64(ino) < firstUser {
		return nil, fmt.Errorf("ntfs: MFT record %d is NTFS metadata: %w", r.num, syscall.EPERM)
	}
	o.mark(r)
	return r, nil
}

// WriteAt writes file content.
func (v *Volume) WriteAt(ino volume.Ino, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ntfs: negative offset: %w", syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	err := v.do(func(o *op) error {
		r, err := o.fileRec(ino)
		if err != nil {
			return err
		}
		if err := o.wofUnwrap(r); err != nil {
			return err
		}
		d, err := o.openStream(r, "")
		if isSplitStream(err) {
			done, werr := v.overwriteInPlace(r.num, "", p, off)
			if werr != nil || !done {
				return err
			}
		} else if err != nil {
			return err
		} else if err := v.writeData(d, p, off); err != nil {
			return err
		}
		if err := touch(r); err != nil {
			return err
		}
		return o.refreshFileNames(r)
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Truncate sets a file's size.
func (v *Volume) Truncate(ino volume.Ino, size int64) error {
	if size < 0 {
		return fmt.Errorf("ntfs: negative size: %w", syscall.EINVAL)
	}
	return v.do(func(o *op) error {
		r, err := o.fileRec(ino)
		if err != nil {
			return err
		}
		if err := o.wofUnwrap(r); err != nil {
			return err
		}
		d, err := o.openStream(r, "")
		if err != nil {
			return err
		}
		if err := v.truncateData(d, size); err != nil {
			return err
		}
		if err := touch(r); err != nil {
			return err
		}
		return o.refreshFileNames(r)
	})
}

// SetTimes sets the access and modification times that are given.
func (v *Volume) SetTimes(ino volume.Ino, atime, mtime *time.Time) error {
	return v.do(func(o *op) error {
		r, err := o.rec(uint64(ino))
		if err != nil {
			return err
		}
		si, err := siValue(r)
		if err != nil {
			return err
		}
		if mtime != nil {
			binary.LittleEndian.PutUint64(si[0x08:], toNTFSTime(*mtime))
		}
		if atime != nil {
			binary.LittleEndian.PutUint64(si[0x18:], toNTFSTime(*atime))
		}
		binary.LittleEndian.PutUint64(si[0x10:], toNTFSTime(time.Now()))
		o.mark(r)
		return o.refreshFileNames(r)
	})
}

// SetXattr writes a named stream (user.<name>) or the Windows attributes.
func (v *Volume) SetXattr(ino volume.Ino, name string, value []byte) error {
	return v.do(func(o *op) error {
		r, err := o.rec(uint64(ino))
		if err != nil {
			return err
		}
		o.mark(r)
		switch {
		case name == xattrAttrib || name == xattrAttribBE:
			if len(value) != 4 {
				return fmt.Errorf("ntfs: %s takes 4 bytes: %w", name, syscall.EINVAL)
			}
			a := binary.LittleEndian.Uint32(value)
			if name == xattrAttribBE {
				a = binary.BigEndian.Uint32(value)
			}
			return o.setAttrib(r, a)
		case strings.HasPrefix(name, xattrUser) && len(name) > len(xattrUser):
			stream := name[len(xattrUser):]
			if err := checkName(stream); err != nil {
				return err
			}
			d, err := o.openStream(r, stream)
			if err != nil {
				return err
			}
			if err := v.truncateData(d, 0); err != nil {
				return err
			}
			if len(value) > 0 {
				if err := v.writeData(d, value, 0); err != nil {
					return err
				}
			}
			return touch(r)
		}
		return fmt.Errorf("ntfs: xattr %q is not supported: %w", name, syscall.EOPNOTSUPP)
	})
}

// setAttrib changes the settable Windows attribute bits.
func (o *op) setAttrib(r *record, a uint32) error {
	const settable = faReadOnly | faHidden | faSystem | faArchive | 0x0100 /* temporary */ | 0x1000 /* offline */ | 0x2000 /* not indexed */
	si, err := siValue(r)
	if err != nil {
		return err
	}
	cur := binary.LittleEndian.Uint32(si[0x20:])
	binary.LittleEndian.PutUint32(si[0x20:], cur&^settable|a&settable)
	return o.refreshFileNames(r)
}

// RemoveXattr deletes a named stream.
func (v *Volume) RemoveXattr(ino volume.Ino, name string) error {
	if !strings.HasPrefix(name, xattrUser) || len(name) == len(xattrUser) {
		return fmt.Errorf("ntfs: xattr %q cannot be removed: %w", name, syscall.EOPNOTSUPP)
	}
	return v.do(func(o *op) error {
		r, err := o.rec(uint64(ino))
		if err != nil {
			return err
		}
		stream := name[len(xattrUser):]
		in, err := v.loadInode(r.num)
		if err != nil {
			return err
		}
		if in.find(atData, stream) == nil || v.isWOFStream(in, stream) {
			return fmt.Errorf("ntfs: MFT record %d has no stream %q: %w", r.num, name, syscall.ENODATA)
		}
		d, err := o.openStream(r, stream)
		if err != nil {
			return err
		}
		if err := v.truncateData(d, 0); err != nil { // frees its clusters, wherever its extents are
			return err
		}
		if err := o.removeAttrAnywhere(r, atData, stream); err != nil {
			return err
		}
		o.mark(r)
		return touch(r)
	})
}
