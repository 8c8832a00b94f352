package volume

import "os"

// ModeWriter is implemented by writers whose file system keeps Unix
// permissions and owners (ext). The FUSE tree calls it for chmod and
// chown; on file systems without them (NTFS, FAT) both are accepted and
// ignored, as ntfs-3g does without a user mapping. A Linux guest updated
// offline (dpkg installs each file, then sets its mode and owner) needs
// them kept.
type ModeWriter interface {
	// SetMode sets the permission bits (with setuid, setgid, sticky) of
	// ino, keeping its type.
	SetMode(ino Ino, mode os.FileMode) error
	// SetOwner sets the owner and group of ino; -1 leaves one as it is.
	SetOwner(ino Ino, uid, gid int64) error
}
