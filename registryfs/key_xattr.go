package registryfs

import (
	"context"
	"syscall"
	"unicode/utf8"
)

// classXattr is a key's class name, as UTF-8 text. Windows stores it as
// UTF-16LE; the LSA keys' classes (JD, Skew1, GBG, Data) hold the boot key
// that offline password and forensics tools need.
const classXattr = "user.reg.class"

func (n *keyNode) Getxattr(ctx context.Context, attr string, dest []byte) (_ uint32, e syscall.Errno) {
	defer guard(&e)
	if attr != classXattr {
		return 0, syscall.ENODATA
	}
	c := n.key.Class()
	if len(c) == 0 {
		return 0, syscall.ENODATA
	}
	s, ok := utf16String(c)
	if !ok {
		s = string(c) // not UTF-16: raw, as values that do not decode are
	}
	return xattrOut(dest, s)
}

func (n *keyNode) Listxattr(ctx context.Context, dest []byte) (_ uint32, e syscall.Errno) {
	defer guard(&e)
	if len(n.key.Class()) == 0 {
		return 0, 0
	}
	return xattrOut(dest, classXattr+"\x00")
}

// Setxattr sets the class name; it is a change of the hive like any other.
func (n *keyNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (e syscall.Errno) {
	defer guard(&e)
	if attr != classXattr {
		return syscall.ENOTSUP
	}
	if !utf8.Valid(data) {
		return syscall.EINVAL
	}
	if e := n.editable(); e != 0 {
		return e
	}
	return errno(n.key.SetClass(utf16Bytes(string(data))))
}

func (n *keyNode) Removexattr(ctx context.Context, attr string) (e syscall.Errno) {
	defer guard(&e)
	if attr != classXattr {
		return syscall.ENODATA
	}
	if len(n.key.Class()) == 0 {
		return syscall.ENODATA
	}
	if e := n.editable(); e != 0 {
		return e
	}
	return errno(n.key.SetClass(nil))
}

// xattrOut answers a getxattr/listxattr: the size when dest is empty,
// ERANGE when it is too small.
func xattrOut(dest []byte, s string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(s)), 0
	}
	if len(dest) < len(s) {
		return uint32(len(s)), syscall.ERANGE
	}
	return uint32(copy(dest, s)), 0
}
