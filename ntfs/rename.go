package ntfs

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// rename moves oldName in oldDir to newName in newDir as rename(2) does.
func (o *op) rename(oldDir uint64, oldName string, newDir uint64, newName string) error {
	v := o.v
	if err := checkName(newName); err != nil {
		return err
	}
	num, stored, err := v.entryIn(oldDir, oldName)
	if err != nil {
		return err
	}
	if num < firstUser {
		return fmt.Errorf("ntfs: %q is an NTFS metadata file: %w", oldName, syscall.EPERM)
	}
	r, err := o.rec(num)
	if err != nil {
		return err
	}
	isDir := r.flags&recIsDir != 0
	if isDir {
		if err := v.checkNotInside(num, newDir); err != nil {
			return err
		}
	}
	dstNum, dstStored, err := v.entryIn(newDir, newName)
	switch {
	case err == nil && dstNum == num:
		if oldDir == newDir && dstStored == newName {
			return nil // same name: nothing to do
		}
		if !(oldDir == newDir && strings.EqualFold(dstStored, stored)) {
			return nil // another hard link of the same file: rename(2) does nothing
		}
		// a change of case: fall through to the move
	case err == nil:
		dst, err := o.rec(dstNum)
		if err != nil {
			return err
		}
		dstDir := dst.flags&recIsDir != 0
		switch {
		case dstDir && !isDir:
			return fmt.Errorf("ntfs: %q is a directory: %w", newName, syscall.EISDIR)
		case !dstDir && isDir:
			return fmt.Errorf("ntfs: %q is not a directory: %w", newName, syscall.ENOTDIR)
		}
		if err := o.removeName(newDir, dstStored, dstDir); err != nil {
			return err
		}
	case !isNotExist(err):
		return err
	}
	if _, err := o.unlinkName(r, oldDir, stored); err != nil {
		return err
	}
	dw, err := o.dir(newDir)
	if err != nil {
		return err
	}
	r.links++
	return o.link(r, dw, newName)
}

// checkNotInside refuses moving directory num below itself.
func (v *Volume) checkNotInside(num, dir uint64) error {
	for i := 0; i < 1024; i++ {
		if dir == num {
			return fmt.Errorf("ntfs: cannot move directory %d inside itself: %w", num, syscall.EINVAL)
		}
		if dir == recRoot {
			return nil
		}
		in, err := v.loadInode(dir)
		if err != nil {
			return err
		}
		if len(in.names) == 0 {
			return nil
		}
		dir = in.names[0].parent & refNumMask
	}
	return fmt.Errorf("ntfs: directory loop above %d: %w", dir, syscall.EIO)
}

func isNotExist(err error) bool {
	var e syscall.Errno
	for err != nil {
		if x, ok := err.(syscall.Errno); ok {
			e = x
			break
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return e == syscall.ENOENT
}

// symlinkReparse builds an NTFS symlink reparse point for a POSIX target:
// relative targets stay relative; absolute ones are taken as paths on
// drive C:, the system drive.
func symlinkReparse(target string) []byte {
	relative := !strings.HasPrefix(target, "/")
	win := strings.ReplaceAll(target, "/", `\`)
	print := win
	subst := win
	if !relative {
		print = "C:" + win
		subst = `\??\C:` + win
	}
	sb, pb := nameBytes(encodeName(subst)), nameBytes(encodeName(print))
	d := make([]byte, 12+len(sb)+len(pb))
	binary.LittleEndian.PutUint16(d[0:], 0)
	binary.LittleEndian.PutUint16(d[2:], uint16(len(sb)))
	binary.LittleEndian.PutUint16(d[4:], uint16(len(sb)))
	binary.LittleEndian.PutUint16(d[6:], uint16(len(pb)))
	if relative {
		binary.LittleEndian.PutUint32(d[8:], symlinkRelative)
	}
	copy(d[12:], sb)
	copy(d[12+len(sb):], pb)
	b := make([]byte, 8+len(d))
	binary.LittleEndian.PutUint32(b, tagSymlink)
	binary.LittleEndian.PutUint16(b[4:], uint16(len(d)))
	copy(b[8:], d)
	return b
}

// Rename moves a name, replacing an existing file as rename(2) does.
func (v *Volume) Rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	return v.do(func(o *op) error { return o.rename(uint64(oldDir), oldName, uint64(newDir), newName) })
}
