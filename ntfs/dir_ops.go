package ntfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

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
