package fs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/offvm/offvm/volume"
)

var (
	_ fs.NodeGetxattrer    = (*vnode)(nil)
	_ fs.NodeListxattrer   = (*vnode)(nil)
	_ fs.NodeSetxattrer    = (*vnode)(nil)
	_ fs.NodeRemovexattrer = (*vnode)(nil)
)

func (n *vnode) Getxattr(ctx context.Context, attr string, dest []byte) (_ uint32, e syscall.Errno) {
	defer guard("getxattr", &e)
	v, err := n.vc.fs.GetXattr(n.ino, attr)
	if err != nil {
		return 0, errno(err)
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *vnode) Listxattr(ctx context.Context, dest []byte) (_ uint32, e syscall.Errno) {
	defer guard("listxattr", &e)
	names, err := n.vc.fs.ListXattr(n.ino)
	if err != nil {
		return 0, errno(err)
	}
	var b []byte
	for _, s := range names {
		b = append(append(b, s...), 0)
	}
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

func (n *vnode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (e syscall.Errno) {
	defer guard("setxattr", &e)
	x, e := capability[volume.Xattrer](n)
	if e != 0 {
		return e
	}
	return errno(x.SetXattr(n.ino, attr, data))
}

func (n *vnode) Removexattr(ctx context.Context, attr string) (e syscall.Errno) {
	defer guard("removexattr", &e)
	x, e := capability[volume.Xattrer](n)
	if e != 0 {
		return e
	}
	return errno(x.RemoveXattr(n.ino, attr))
}
