package ntfs

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Security descriptors of new files, computed as Windows does when a
// file is created without an explicit descriptor (MS-DTYP 2.5.3.4,
// "ACE Inheritance" in the Win32 documentation): the parent's
// inheritable ACEs are copied with INHERITED_ACE set. Offline there is no
// logon token, so the owner and group are the parent's.

// ACE header flags.
const (
	aceObjectInherit    = 0x01
	aceContainerInherit = 0x02
	aceNoPropagate      = 0x04
	aceInheritOnly      = 0x08
	aceInherited        = 0x10
)

// Descriptor control bits.
const (
	seDACLPresent      = 0x0004
	seSACLPresent      = 0x0010
	seDACLAutoInherit  = 0x0400
	seSACLAutoInherit  = 0x0800
	seSelfRelative     = 0x8000
	sdHeaderSize       = 20
	creatorOwnerSIDStr = "\x01\x01\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00" // S-1-3-0
	creatorGroupSIDStr = "\x01\x01\x00\x00\x00\x00\x00\x03\x01\x00\x00\x00" // S-1-3-1
)

// File generic rights and what they map to (FILE_GENERIC_*).
var fileGenericMap = [4][2]uint32{
	{0x80000000, 0x00120089}, // GENERIC_READ
	{0x40000000, 0x00120116}, // GENERIC_WRITE
	{0x20000000, 0x001200a0}, // GENERIC_EXECUTE
	{0x10000000, 0x001f01ff}, // GENERIC_ALL
}

func mapGeneric(mask uint32) uint32 {
	out := mask &^ 0xf0000000
	for _, m := range fileGenericMap {
		if mask&m[0] != 0 {
			out |= m[1]
		}
	}
	return out
}

// secDesc is a parsed self-relative descriptor.
type secDesc struct {
	control      uint16
	owner, group []byte
	dacl, sacl   [][]byte // ACEs; nil lists with the present bit clear
}

func sidLen(b []byte) int {
	if len(b) < 8 {
		return -1
	}
	n := 8 + 4*int(b[1])
	if b[1] > 15 || n > len(b) {
		return -1
	}
	return n
}

func parseSD(b []byte) (*secDesc, error) {
	bad := fmt.Errorf("ntfs: malformed security descriptor: %w", syscall.EIO)
	if len(b) < sdHeaderSize || b[0] != 1 {
		return nil, bad
	}
	le := binary.LittleEndian
	sd := &secDesc{control: le.Uint16(b[2:])}
	sid := func(off uint32) ([]byte, error) {
		if off == 0 {
			return nil, nil
		}
		if int(off) >= len(b) {
			return nil, bad
		}
		n := sidLen(b[off:])
		if n < 0 {
			return nil, bad
		}
		return append([]byte(nil), b[off:int(off)+n]...), nil
	}
	acl := func(off uint32) ([][]byte, error) {
		if off == 0 {
			return nil, nil
		}
		if int(off)+8 > len(b) {
			return nil, bad
		}
		size, count := int(le.Uint16(b[off+2:])), int(le.Uint16(b[off+4:]))
		if int(off)+size > len(b) {
			return nil, bad
		}
		aces := [][]byte{}
		for p := int(off) + 8; count > 0; count-- {
			if p+4 > int(off)+size {
				return nil, bad
			}
			l := int(le.Uint16(b[p+2:]))
			if l < 8 || p+l > int(off)+size {
				return nil, bad
			}
			aces = append(aces, append([]byte(nil), b[p:p+l]...))
			p += l
		}
		return aces, nil
	}
	var err error
	if sd.owner, err = sid(le.Uint32(b[4:])); err != nil {
		return nil, err
	}
	if sd.group, err = sid(le.Uint32(b[8:])); err != nil {
		return nil, err
	}
	if sd.control&seSACLPresent != 0 {
		if sd.sacl, err = acl(le.Uint32(b[12:])); err != nil {
			return nil, err
		}
	}
	if sd.control&seDACLPresent != 0 {
		if sd.dacl, err = acl(le.Uint32(b[16:])); err != nil {
			return nil, err
		}
	}
	return sd, nil
}

// bytes serialises sd self-relative: header, SACL, DACL, owner, group
// (the order Windows uses).
func (sd *secDesc) bytes() []byte {
	le := binary.LittleEndian
	out := make([]byte, sdHeaderSize)
	out[0] = 1
	ctl := sd.control | seSelfRelative
	putACL := func(aces [][]byte, at int) {
		le.PutUint32(out[at:], uint32(len(out)))
		size := 8
		for _, a := range aces {
			size += len(a)
		}
		h := make([]byte, 8)
		h[0] = 2
		le.PutUint16(h[2:], uint16(size))
		le.PutUint16(h[4:], uint16(len(aces)))
		out = append(out, h...)
		for _, a := range aces {
			out = append(out, a...)
		}
	}
	if sd.sacl != nil {
		putACL(sd.sacl, 12)
	}
	if sd.dacl != nil {
		putACL(sd.dacl, 16)
	}
	if sd.owner != nil {
		le.PutUint32(out[4:], uint32(len(out)))
		out = append(out, sd.owner...)
	}
	if sd.group != nil {
		le.PutUint32(out[8:], uint32(len(out)))
		out = append(out, sd.group...)
	}
	le.PutUint16(out[2:], ctl)
	return out
}

// aceSID returns where the SID of a basic ACE (allowed, denied, audit,
// alarm: a mask then the SID) starts; -1 for other types (object ACEs
// are copied as they are).
func aceSID(a []byte) int {
	if a[0] <= 3 && len(a) >= 8+8 {
		return 8
	}
	return -1
}

// effective makes the ACE that applies to the child: inheritance flags
// cleared, generic rights mapped, CREATOR OWNER/GROUP replaced by the
// owner and group. changed says whether it differs from the parent's
// beyond its flags (then an inheritable child keeps the original too).
func effective(a []byte, owner, group []byte) (out []byte, changed bool) {
	out = append([]byte(nil), a...)
	out[1] = aceInherited | a[1]&^(aceObjectInherit|aceContainerInherit|aceNoPropagate|aceInheritOnly|aceInherited)
	so := aceSID(a)
	if so < 0 {
		return out, false
	}
	mask := binary.LittleEndian.Uint32(a[4:])
	if m := mapGeneric(mask); m != mask {
		binary.LittleEndian.PutUint32(out[4:], m)
		changed = true
	}
	sid := string(a[so:])
	var sub []byte
	switch {
	case sid == creatorOwnerSIDStr && owner != nil:
		sub = owner
	case sid == creatorGroupSIDStr && group != nil:
		sub = group
	}
	if sub != nil {
		out = append(out[:so:so], sub...)
		binary.LittleEndian.PutUint16(out[2:], uint16(len(out)))
		changed = true
	}
	return out, changed
}

// inheritACL computes the child's ACEs from the parent's.
func inheritACL(aces [][]byte, dir bool, owner, group []byte) [][]byte {
	var out [][]byte
	for _, a := range aces {
		f := a[1]
		oi, ci, np := f&aceObjectInherit != 0, f&aceContainerInherit != 0, f&aceNoPropagate != 0
		switch {
		case !dir && oi, dir && ci && np:
			e, _ := effective(a, owner, group)
			out = append(out, e)
		case dir && ci:
			e, changed := effective(a, owner, group)
			if !changed {
				e[1] |= f & (aceObjectInherit | aceContainerInherit)
				out = append(out, e)
				continue
			}
			keep := append([]byte(nil), a...)
			keep[1] = f&(aceObjectInherit|aceContainerInherit) | aceInheritOnly | aceInherited | f&^(aceObjectInherit|aceContainerInherit|aceNoPropagate|aceInheritOnly|aceInherited)
			out = append(out, e, keep)
		case dir && oi && !np: // passed on to the files below, not effective here
			keep := append([]byte(nil), a...)
			keep[1] = aceObjectInherit | aceInheritOnly | aceInherited | f&^(aceObjectInherit|aceContainerInherit|aceNoPropagate|aceInheritOnly|aceInherited)
			out = append(out, keep)
		}
	}
	return out
}

// inheritSD returns the descriptor a new file (or directory) in a
// parent with descriptor parent gets; nil when the parent passes no ACE
// on (Windows would then use the creator's default DACL, which offline
// does not exist: the caller keeps the parent's descriptor).
func inheritSD(parent []byte, dir bool) ([]byte, error) {
	p, err := parseSD(parent)
	if err != nil {
		return nil, err
	}
	dacl := inheritACL(p.dacl, dir, p.owner, p.group)
	if len(dacl) == 0 {
		return nil, nil
	}
	c := &secDesc{owner: p.owner, group: p.group, dacl: dacl, control: seDACLPresent}
	if p.control&seDACLAutoInherit != 0 {
		c.control |= seDACLAutoInherit
	}
	if sacl := inheritACL(p.sacl, dir, p.owner, p.group); len(sacl) > 0 {
		c.sacl, c.control = sacl, c.control|seSACLPresent
		if p.control&seSACLAutoInherit != 0 {
			c.control |= seSACLAutoInherit
		}
	}
	return c.bytes(), nil
}
