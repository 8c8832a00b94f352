package registryfs

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
)

// valueNode is a registry value as a file.
type valueNode struct {
	fs.Inode
	c    *ctx
	hive *winreg.Hive
	key  *hive.Key
	name string
}

// valueHandle is an open value: writes collect in buf and become the
// value's data at flush (close), parsed for the value's type. Numbers are
// checked as they are written, so `echo 99999999999 > dword` fails at
// once with EINVAL, as sysfs does.
type valueHandle struct {
	mu    sync.Mutex
	buf   []byte
	dirty bool
}

var (
	_ fs.NodeGetattrer     = (*valueNode)(nil)
	_ fs.NodeSetattrer     = (*valueNode)(nil)
	_ fs.NodeOpener        = (*valueNode)(nil)
	_ fs.NodeReader        = (*valueNode)(nil)
	_ fs.NodeWriter        = (*valueNode)(nil)
	_ fs.NodeFlusher       = (*valueNode)(nil)
	_ fs.NodeGetxattrer    = (*valueNode)(nil)
	_ fs.NodeSetxattrer    = (*valueNode)(nil)
	_ fs.NodeListxattrer   = (*valueNode)(nil)
	_ fs.NodeRemovexattrer = (*valueNode)(nil)
)

func (n *valueNode) value() (*hive.Value, syscall.Errno) {
	v, err := n.key.Value(n.name)
	if err != nil {
		return nil, syscall.ENOENT
	}
	return v, 0
}

func (n *valueNode) content() (uint32, []byte, syscall.Errno) {
	v, e := n.value()
	if e != 0 {
		return 0, nil, e
	}
	d, err := v.Data()
	if err != nil {
		return 0, nil, errno(err)
	}
	return v.Type(), Render(v.Type(), d), 0
}

func (n *valueNode) fill(out *fuse.Attr) syscall.Errno {
	_, c, e := n.content()
	if e != 0 {
		return e
	}
	out.Mode = syscall.S_IFREG | 0o644
	if !n.c.writable(n.hive) {
		out.Mode = syscall.S_IFREG | 0o444
	}
	out.Size = uint64(len(c))
	out.Nlink = 1
	out.Owner = fuse.Owner{Uid: n.c.owner.UID, Gid: n.c.owner.GID}
	t := n.key.LastWritten()
	out.SetTimes(&t, &t, &t)
	return 0
}

func (n *valueNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) (e syscall.Errno) {
	defer guard(&e)
	if h, ok := fh.(*valueHandle); ok {
		h.mu.Lock() // Flush clears dirty meanwhile
		dirty, size := h.dirty, len(h.buf)
		h.mu.Unlock()
		if dirty {
			n.fill(&out.Attr)
			out.Size = uint64(size)
			return 0
		}
	}
	return n.fill(&out.Attr)
}

func (n *valueNode) Open(ctx context.Context, flags uint32) (_ fs.FileHandle, _ uint32, e syscall.Errno) {
	defer guard(&e)
	writing := flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0
	if !writing {
		// The kernel keeps the pages across opens: a value changes only
		// through this view, which drops them (changed). The attributes
		// give the rendered size, so one READ serves a value, rendered
		// then (no handle): a scanner's second pass, served from the
		// pages, renders nothing. Nothing to store at close.
		if _, e := n.value(); e != 0 {
			return nil, 0, e
		}
		return nil, fuse.FOPEN_NOFLUSH | fuse.FOPEN_KEEP_CACHE, 0
	}
	_, c, e := n.content()
	if e != 0 {
		return nil, 0, e
	}
	if _, err := n.c.reg.Editable(n.hive); err != nil {
		return nil, 0, errno(err)
	}
	h := &valueHandle{buf: c}
	if flags&syscall.O_TRUNC != 0 {
		h.buf, h.dirty = []byte{}, true
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

func (n *valueNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (_ fuse.ReadResult, e syscall.Errno) {
	defer guard(&e)
	var c []byte
	if h, ok := fh.(*valueHandle); ok {
		h.mu.Lock()
		c = append([]byte(nil), h.buf...)
		h.mu.Unlock()
	} else if _, c, e = n.content(); e != 0 {
		return nil, e
	}
	if off >= int64(len(c)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(c[off:min(int64(len(c)), off+int64(len(dest)))]), 0
}

func (n *valueNode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (_ uint32, e syscall.Errno) {
	defer guard(&e)
	h, ok := fh.(*valueHandle)
	if !ok {
		return 0, syscall.EBADF
	}
	v, e := n.value()
	if e != 0 {
		return 0, e
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	end := off + int64(len(data))
	if end > 1<<30 {
		return 0, syscall.EFBIG
	}
	if end > int64(len(h.buf)) {
		h.buf = append(h.buf, make([]byte, end-int64(len(h.buf)))...)
	}
	copy(h.buf[off:], data)
	h.dirty = true
	if isNumber(v.Type()) {
		if _, err := Parse(v.Type(), h.buf); err != nil {
			h.buf = h.buf[:off]
			return 0, syscall.EINVAL
		}
	}
	return uint32(len(data)), 0
}

func isNumber(t uint32) bool {
	return t == hive.RegDword || t == hive.RegDwordBigEndian || t == hive.RegQword
}

// Flush stores what was written as the value's data.
func (n *valueNode) Flush(ctx context.Context, fh fs.FileHandle) (e syscall.Errno) {
	defer guard(&e)
	h, ok := fh.(*valueHandle)
	if !ok {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty {
		return 0
	}
	return n.store(h.buf, &h.dirty)
}

func (n *valueNode) store(content []byte, dirty *bool) syscall.Errno {
	v, e := n.value()
	if e != 0 {
		return e
	}
	if _, err := n.c.reg.Editable(n.hive); err != nil {
		return errno(err)
	}
	data, err := Parse(v.Type(), content)
	if err != nil {
		return errno(err)
	}
	if err := n.key.SetValue(n.name, v.Type(), data); err != nil {
		return errno(err)
	}
	if dirty != nil {
		*dirty = false
	}
	n.changed()
	return 0
}

// changed drops what the kernel caches of this value (size, pages): the
// rendered content may differ in length from what was written, and the
// kernel set the size itself at the O_TRUNC open and at each write. Done
// before the request is answered, so that the writer's close (or
// setxattr, or truncate) returns on a kernel that asks again: done after,
// a read at once got the size of the raw write (its GETATTR answer,
// overtaken by the notification, was dropped). An inode notification
// takes no lock the kernel holds during these requests (entry
// notifications do: forgetSpellings).
func (n *valueNode) changed() {
	n.NotifyContent(0, 0)
	if _, p := n.Parent(); p != nil {
		p.NotifyContent(0, 0) // the key's last-written time
	}
}

// Setattr handles truncate (`: > value`); times and modes are not kept.
func (n *valueNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) (e syscall.Errno) {
	defer guard(&e)
	if sz, ok := in.GetSize(); ok {
		if h, ok := fh.(*valueHandle); ok {
			h.mu.Lock()
			if int(sz) <= len(h.buf) {
				h.buf = h.buf[:sz]
			} else {
				h.buf = append(h.buf, make([]byte, int(sz)-len(h.buf))...)
			}
			h.dirty = true
			h.mu.Unlock()
		} else {
			_, c, e := n.content()
			if e != 0 {
				return e
			}
			if int(sz) <= len(c) {
				c = c[:sz]
			} else {
				c = append(c, make([]byte, int(sz)-len(c))...)
			}
			if e := n.store(c, nil); e != 0 {
				return e
			}
		}
	}
	return n.Getattr(ctx, fh, out)
}

const typeXattr = "user.reg.type"

func (n *valueNode) Getxattr(ctx context.Context, attr string, dest []byte) (_ uint32, e syscall.Errno) {
	defer guard(&e)
	if attr != typeXattr {
		return 0, syscall.ENODATA
	}
	v, e := n.value()
	if e != 0 {
		return 0, e
	}
	s := TypeName(v.Type())
	if len(dest) == 0 {
		return uint32(len(s)), 0
	}
	if len(dest) < len(s) {
		return uint32(len(s)), syscall.ERANGE
	}
	return uint32(copy(dest, s)), 0
}

// Setxattr changes the value's type; the data's bytes stay as they are
// until the content is written in the new type's form.
func (n *valueNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) (e syscall.Errno) {
	defer guard(&e)
	if attr != typeXattr {
		return syscall.ENOTSUP
	}
	t, err := ParseType(string(data))
	if err != nil {
		return syscall.EINVAL
	}
	if _, err := n.c.reg.Editable(n.hive); err != nil {
		return errno(err)
	}
	v, e := n.value()
	if e != 0 {
		return e
	}
	d, err := v.Data()
	if err != nil {
		return errno(err)
	}
	if err := n.key.SetValue(n.name, t, d); err != nil {
		return errno(err)
	}
	n.changed()
	return 0
}

func (n *valueNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	s := typeXattr + "\x00"
	if len(dest) == 0 {
		return uint32(len(s)), 0
	}
	if len(dest) < len(s) {
		return uint32(len(s)), syscall.ERANGE
	}
	return uint32(copy(dest, s)), 0
}

func (n *valueNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EPERM
}
