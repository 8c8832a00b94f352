package ntfs

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"

	"github.com/offvm/offvm/volume"
)

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
