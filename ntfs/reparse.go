package ntfs

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
)

// Reparse tags.
const (
	tagMountPoint = 0xa0000003
	tagSymlink    = 0xa000000c
	tagDedup      = 0x80000013
	tagWOF        = 0x80000017
	tagLXSymlink  = 0xa000001d
)

const symlinkRelative = 1

// reparseTag returns the file's reparse tag, 0 without one.
func (v *Volume) reparseData(in *inode) (uint32, []byte, error) {
	s := in.find(atReparse, "")
	if s == nil {
		return 0, nil, nil
	}
	var b []byte
	if s.resident {
		b = s.value
	} else {
		if s.dataSize > 65536 {
			return 0, nil, fmt.Errorf("ntfs: MFT record %d: reparse point of %d bytes: %w", in.num, s.dataSize, syscall.EIO)
		}
		b = make([]byte, s.dataSize)
		if _, err := v.readStream(s, b, 0); err != nil {
			return 0, nil, err
		}
	}
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("ntfs: MFT record %d: short reparse point: %w", in.num, syscall.EIO)
	}
	l := int(binary.LittleEndian.Uint16(b[4:]))
	if 8+l > len(b) {
		return 0, nil, fmt.Errorf("ntfs: MFT record %d: reparse data past its attribute: %w", in.num, syscall.EIO)
	}
	return binary.LittleEndian.Uint32(b), b[8 : 8+l], nil
}

func isLinkTag(tag uint32) bool {
	return tag == tagSymlink || tag == tagMountPoint || tag == tagLXSymlink
}

// linkTarget turns a symlink or junction into a POSIX target: relative
// links keep their path with '/' separators; absolute ones become the
// path on their drive ("\??\C:\Windows" → "/Windows"), which is where they
// point when this volume is that drive.
func linkTarget(tag uint32, d []byte) (string, error) {
	if tag == tagLXSymlink {
		if len(d) < 4 {
			return "", syscall.EIO
		}
		return string(d[4:]), nil
	}
	hdr := 8
	if tag == tagSymlink {
		hdr = 12
	}
	if len(d) < hdr {
		return "", syscall.EIO
	}
	so, sl := int(binary.LittleEndian.Uint16(d)), int(binary.LittleEndian.Uint16(d[2:]))
	po, pl := int(binary.LittleEndian.Uint16(d[4:])), int(binary.LittleEndian.Uint16(d[6:]))
	buf := d[hdr:]
	relative := tag == tagSymlink && binary.LittleEndian.Uint32(d[8:])&symlinkRelative != 0
	name := ""
	switch {
	case po+pl <= len(buf) && pl > 0:
		name = decodeName(buf[po : po+pl])
	case so+sl <= len(buf):
		name = decodeName(buf[so : so+sl])
	default:
		return "", syscall.EIO
	}
	if relative {
		return strings.ReplaceAll(name, `\`, "/"), nil
	}
	name = strings.TrimPrefix(name, `\??\`)
	if len(name) >= 2 && name[1] == ':' {
		name = name[2:]
	}
	return strings.ReplaceAll(name, `\`, "/"), nil
}

// intxMagic starts the data of an Interix symlink, which ntfs-3g creates by
// default: a system file whose content is the magic and a UTF-16 target.
const intxMagic = "IntxLNK\x01"

// symlinkTarget reports whether in is a symlink (reparse or Interix) and its target.
func (v *Volume) symlinkTarget(in *inode) (string, bool, error) {
	tag, d, err := v.reparseData(in)
	if err != nil {
		return "", false, err
	}
	if isLinkTag(tag) {
		t, err := linkTarget(tag, d)
		if err != nil {
			return "", true, fmt.Errorf("ntfs: MFT record %d: bad link: %w", in.num, err)
		}
		return t, true, nil
	}
	if in.si.attrs&faSystem == 0 || in.isDir() || tag != 0 {
		return "", false, nil
	}
	s := in.find(atData, "")
	if s == nil || s.dataSize < 8 || s.dataSize > 8+2*4096 || s.dataSize%2 != 0 {
		return "", false, nil
	}
	b := make([]byte, s.dataSize)
	if _, err := v.readStream(s, b, 0); err != nil && s.dataSize != int64(len(b)) {
		return "", false, err
	}
	if string(b[:8]) != intxMagic {
		return "", false, nil
	}
	return decodeName(b[8:]), true, nil
}
