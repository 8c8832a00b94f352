package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/offvm/offvm/volume"
)

const (
	xattrMagic        = 0xEA020000
	xattrIndexUser    = 1
	xattrIndexSystem  = 7
	xattrEntryHeader  = 16
	xattrBlockHeader  = 32
	maxXattrValueSize = 64 << 10 // XATTR_SIZE_MAX
)

var errNoXattr = fmt.Errorf("ext: no such extended attribute: %w", syscall.ENODATA)

// xattr is one decoded attribute entry.
type xattr struct {
	index uint8
	name  string
	value []byte
}

// parseXattrs decodes the entries starting at entries[0]; value offsets
// count from base (the first entry in an inode, the block start in a
// block). Values held in their own inode (ea_inode) are read from it.
func (f *FS) parseXattrs(owner uint32, entries, base []byte) ([]xattr, error) {
	le := binary.LittleEndian
	var out []xattr
	for off := 0; off+4 <= len(entries) && le.Uint32(entries[off:]) != 0; {
		if off+xattrEntryHeader > len(entries) {
			return nil, f.xattrCorrupt(owner, "entry header past the end")
		}
		e := entries[off:]
		nameLen := int(e[0])
		if xattrEntryHeader+nameLen > len(e) {
			return nil, f.xattrCorrupt(owner, "name past the end")
		}
		x := xattr{index: e[1], name: string(e[xattrEntryHeader : xattrEntryHeader+nameLen])}
		voff, vino, vsize := int(le.Uint16(e[2:])), le.Uint32(e[4:]), le.Uint32(e[8:])
		switch {
		case vsize > maxXattrValueSize:
			return nil, f.xattrCorrupt(owner, "value larger than 64 KiB")
		case vino != 0:
			v, err := f.eaInodeValue(vino, int(vsize))
			if err != nil {
				return nil, err
			}
			x.value = v
		case voff+int(vsize) > len(base):
			return nil, f.xattrCorrupt(owner, "value past the end")
		default:
			x.value = base[voff : voff+int(vsize)]
		}
		out = append(out, x)
		off += (xattrEntryHeader + nameLen + 3) &^ 3
	}
	return out, nil
}

func (f *FS) xattrCorrupt(ino uint32, why string) error {
	return fmt.Errorf("ext: inode %d: extended attributes: %s: %w", ino, why, syscall.EIO)
}

// eaInodeValue reads a large value stored in an inode of its own.
func (f *FS) eaInodeValue(vino uint32, size int) ([]byte, error) {
	in, err := f.inode(vino)
	if err != nil {
		return nil, err
	}
	// A value inode is never inline: refusing that also keeps a hostile
	// inode from pointing its own inline data back at itself.
	if in.flags&flagEAInode == 0 || in.flags&flagInlineData != 0 || in.size != uint64(size) {
		return nil, fmt.Errorf("ext: inode %d is not a %d-byte xattr value inode: %w", vino, size, syscall.EIO)
	}
	v := make([]byte, size)
	if _, err := f.readContent(in, v, 0); err != nil && size > 0 {
		return nil, err
	}
	return v, nil
}

// inodeBodyXattrs are the attributes inside the inode, after its fields.
func (f *FS) inodeBodyXattrs(in *inode) ([]xattr, error) {
	a := in.xattrArea
	if len(a) < 4 || binary.LittleEndian.Uint32(a) != xattrMagic {
		return nil, nil
	}
	return f.parseXattrs(in.ino, a[4:], a[4:])
}

// blockXattrs are the attributes in the inode's xattr block (i_file_acl).
func (f *FS) blockXattrs(in *inode) ([]xattr, error) {
	if in.fileACL == 0 {
		return nil, nil
	}
	b, err := f.metaBlock(in.fileACL)
	if err != nil {
		return nil, fmt.Errorf("ext: inode %d: xattr block: %w", in.ino, err)
	}
	le := binary.LittleEndian
	if le.Uint32(b) != xattrMagic || le.Uint32(b[8:]) != 1 {
		return nil, f.xattrCorrupt(in.ino, "bad xattr block header")
	}
	return f.parseXattrs(in.ino, b[xattrBlockHeader:], b)
}

// inodeXattr finds one attribute in the inode body only (where
// system.data, the inline data's tail, must be).
func (f *FS) inodeXattr(in *inode, index uint8, name string) ([]byte, error) {
	xs, err := f.inodeBodyXattrs(in)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		if x.index == index && x.name == name {
			return x.value, nil
		}
	}
	return nil, errNoXattr
}

// allXattrs are the inode's attributes, body first then block.
func (f *FS) allXattrs(ino volume.Ino) ([]xattr, error) {
	in, err := f.inodeOf(ino)
	if err != nil {
		return nil, err
	}
	body, err := f.inodeBodyXattrs(in)
	if err != nil {
		return nil, err
	}
	blk, err := f.blockXattrs(in)
	if err != nil {
		return nil, err
	}
	return append(body, blk...), nil
}

// ListXattr lists the user.* attributes. Other namespaces are not shown:
// system.* holds ext internals (inline data, ACLs in ext's own packed
// form), and security.* and trusted.* are the guest's, not the host's.
func (f *FS) listXattr(ino volume.Ino) ([]string, error) {
	xs, err := f.allXattrs(ino)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, x := range xs {
		if x.index == xattrIndexUser {
			names = append(names, "user."+x.name)
		}
	}
	return names, nil
}

// GetXattr returns a user.* attribute; ENODATA when absent.
func (f *FS) getXattr(ino volume.Ino, name string) ([]byte, error) {
	short, ok := strings.CutPrefix(name, "user.")
	xs, err := f.allXattrs(ino)
	if err != nil {
		return nil, err
	}
	if ok {
		for _, x := range xs {
			if x.index == xattrIndexUser && x.name == short {
				return append([]byte(nil), x.value...), nil
			}
		}
	}
	return nil, fmt.Errorf("ext: inode %d: %s: %w", ino, name, errors.Unwrap(errNoXattr))
}
