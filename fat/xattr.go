package fat

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// The FAT attribute byte is shown as ntfs-3g shows NTFS attributes: a
// 32-bit value, little-endian (and big-endian under the _be name).
const (
	xattrAttrib   = "system.ntfs_attrib"
	xattrAttribBE = "system.ntfs_attrib_be"
)

// ListXattr lists nothing: FAT has no streams, and like ntfs-3g the
// system.ntfs_attrib attribute is readable by name but not listed (so
// that copying tools do not carry it to other file systems).
func (v *Volume) ListXattr(ino volume.Ino) ([]string, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if _, err := v.rget(ino); err != nil {
		return nil, err
	}
	return []string{}, nil
}

// GetXattr returns the attribute byte as system.ntfs_attrib.
func (v *Volume) GetXattr(ino volume.Ino, name string) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, err := v.rget(ino)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	switch name {
	case xattrAttrib:
		binary.LittleEndian.PutUint32(b, uint32(n.ent.attr))
	case xattrAttribBE:
		binary.BigEndian.PutUint32(b, uint32(n.ent.attr))
	default:
		return nil, fmt.Errorf("fat: extended attribute %q: %w", name, syscall.ENODATA)
	}
	return b, nil
}

// SetXattr sets the read-only, hidden, system and archive bits through
// system.ntfs_attrib; the directory bit follows the file's type.
func (v *Volume) SetXattr(ino volume.Ino, name string, value []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return err
	}
	n, err := v.get(ino)
	if err != nil {
		return err
	}
	var a uint32
	switch {
	case name != xattrAttrib && name != xattrAttribBE:
		return fmt.Errorf("fat: extended attribute %q: FAT holds no streams or extended attributes: %w", name, syscall.ENOTSUP)
	case len(value) != 4:
		return fmt.Errorf("fat: %s takes 4 bytes, got %d: %w", name, len(value), syscall.EINVAL)
	case name == xattrAttrib:
		a = binary.LittleEndian.Uint32(value)
	default:
		a = binary.BigEndian.Uint32(value)
	}
	if n == v.root {
		return fmt.Errorf("fat: the root directory has no attributes: %w", syscall.EPERM)
	}
	n.ent.attr = n.ent.attr&^attrSettable | byte(a)&attrSettable
	return v.writeEnt(n)
}

// RemoveXattr: there is nothing removable.
func (v *Volume) RemoveXattr(ino volume.Ino, name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.get(ino); err != nil {
		return err
	}
	if name == xattrAttrib || name == xattrAttribBE {
		return fmt.Errorf("fat: %s cannot be removed: %w", name, syscall.EPERM)
	}
	return fmt.Errorf("fat: extended attribute %q: %w", name, syscall.ENODATA)
}
