package hive

import (
	"encoding/binary"
	"time"
)

// New returns an empty hive (format 1.5) whose root key is named rootName
// and carries a default security descriptor: owner and group
// BUILTIN\Administrators, Everyone granted KEY_ALL_ACCESS, inherited by
// subkeys. Serialize it to get a file.
func New(rootName string) *Hive {
	h := &Hive{name: "new hive", secs: map[uint32]*Security{}, modified: true}
	h.bb = baseBlock{major: 1, minor: 5, fileType: fileTypePrimary}
	h.root = &Key{h: h, cell: noCell, name: rootName, flags: 0x0C, // KEY_HIVE_ENTRY|KEY_NO_DELETE
		written: timeToFiletime(time.Now()), sec: &Security{desc: defaultDescriptor()}}
	h.root.subsLoaded.Store(true)
	h.root.valsLoaded.Store(true)
	return h
}

// defaultDescriptor builds a self-relative security descriptor.
func defaultDescriptor() []byte {
	admins := []byte{1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0} // S-1-5-32-544
	everyone := []byte{1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}                  // S-1-1-0
	ace := []byte{0, 0x02, 20, 0}                                           // allowed, container inherit
	ace = binary.LittleEndian.AppendUint32(ace, 0x000F003F)                 // KEY_ALL_ACCESS
	ace = append(ace, everyone...)
	acl := []byte{2, 0, 28, 0, 1, 0, 0, 0}
	acl = append(acl, ace...)
	sd := []byte{1, 0, 0x04, 0x80} // revision 1, SE_SELF_RELATIVE|SE_DACL_PRESENT
	le := binary.LittleEndian
	sd = le.AppendUint32(sd, 20+28)    // owner
	sd = le.AppendUint32(sd, 20+28+16) // group
	sd = le.AppendUint32(sd, 0)        // no SACL
	sd = le.AppendUint32(sd, 20)       // DACL
	sd = append(sd, acl...)
	sd = append(sd, admins...)
	return append(sd, admins...)
}
