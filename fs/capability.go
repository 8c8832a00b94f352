package fs

import (
	"reflect"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// missing is what the tree answers when a writable engine lacks a
// capability: the errno Linux's own driver for such a file system gives
// (vfat refuses links with EPERM; a file system without extended
// attributes answers ENOTSUP, which cp -a and rsync -X pass over).
// ModeWriter is not here: chmod and chown on NTFS and FAT are accepted and
// ignored (volume_file.go), as ntfs-3g does.
var missing = map[reflect.Type]syscall.Errno{
	reflect.TypeFor[volume.Linker]():    syscall.EPERM,
	reflect.TypeFor[volume.Symlinker](): syscall.EPERM,
	reflect.TypeFor[volume.Timer]():     syscall.ENOTSUP,
	reflect.TypeFor[volume.Xattrer]():   syscall.ENOTSUP,
}

// capability returns the engine's side for capability C of a writable
// volume: EROFS when the volume is read-only, the errno of missing when
// the engine does not have it.
func capability[C any](n *vnode) (C, syscall.Errno) {
	var none C
	w, e := n.writer()
	if e != 0 {
		return none, e
	}
	if c, ok := w.(C); ok {
		return c, 0
	}
	if e, ok := missing[reflect.TypeFor[C]()]; ok {
		return none, e
	}
	return none, syscall.ENOTSUP
}
