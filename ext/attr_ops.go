package ext

import (
	"os"
	"time"

	"github.com/offvm/offvm/volume"
)

// SetMode sets the permission bits of ino and keeps its type (chmod).
func (f *FS) SetMode(ino volume.Ino, mode os.FileMode) error {
	return f.editInode(ino, func(r *rino) {
		le.PutUint16(r.b[0:], r.mode()&sIFMT|modeBits(mode, 0))
	})
}

// SetOwner sets the owner and group of ino (chown); -1 keeps one. The
// 32-bit ids are split as ext4 stores them: low 16 bits in the base
// inode, high 16 bits in osd2.
func (f *FS) SetOwner(ino volume.Ino, uid, gid int64) error {
	return f.editInode(ino, func(r *rino) {
		if uid >= 0 {
			le.PutUint16(r.b[2:], uint16(uid))
			le.PutUint16(r.b[0x78:], uint16(uid>>16))
		}
		if gid >= 0 {
			le.PutUint16(r.b[24:], uint16(gid))
			le.PutUint16(r.b[0x7A:], uint16(gid>>16))
		}
	})
}

// editInode changes ino's raw inode and its ctime, as chmod, chown and
// utimes do.
func (f *FS) editInode(ino volume.Ino, edit func(*rino)) error {
	_, err := f.locked(func() (uint32, error) {
		n, err := f.inoArg(ino)
		if err != nil {
			return 0, err
		}
		r, err := f.loadRaw(n)
		if err != nil {
			return 0, err
		}
		edit(r)
		r.setCtime(time.Now())
		return n, f.storeRaw(r)
	})
	return err
}
