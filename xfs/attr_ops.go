package xfs

import (
	"os"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

var _ volume.ModeWriter = (*FS)(nil)

// Inode core fields chmod and chown change.
const (
	diMode = 2
	diUID  = 8
	diGID  = 12
)

// SetMode sets the permission bits of ino and keeps its type (chmod).
func (f *FS) SetMode(ino volume.Ino, mode os.FileMode) error {
	return f.editInode(uint64(ino), func(r *rawInode) {
		be.PutUint16(r.b[diMode:], r.mode()&syscall.S_IFMT|modeBits(mode))
	})
}

// SetOwner sets the owner and group of ino (chown); -1 keeps one. XFS
// keeps both as 32-bit numbers in the inode core.
func (f *FS) SetOwner(ino volume.Ino, uid, gid int64) error {
	return f.editInode(uint64(ino), func(r *rawInode) {
		if uid >= 0 {
			be.PutUint32(r.b[diUID:], uint32(uid))
		}
		if gid >= 0 {
			be.PutUint32(r.b[diGID:], uint32(gid))
		}
	})
}

// editInode changes ino's core and its ctime in one txn.
func (f *FS) editInode(ino uint64, edit func(*rawInode)) error {
	if _, err := f.begin(); err != nil {
		return err
	}
	defer f.end(ino)
	r, err := f.loadRaw(ino)
	if err != nil {
		return err
	}
	edit(r)
	r.putTime(diCtime, time.Now())
	t := &txn{f: f}
	if err := r.queue(f, t, false); err != nil {
		return err
	}
	return t.commit()
}

// modeBits is the inode's permission bits for m (setuid, setgid and
// sticky in their Unix places).
func modeBits(m os.FileMode) uint16 {
	p := uint16(m.Perm())
	if m&os.ModeSetuid != 0 {
		p |= syscall.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		p |= syscall.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		p |= syscall.S_ISVTX
	}
	return p
}
