package ext

import "github.com/offvm/offvm/volume"

// The volume.FS reads share f.rw, so a change (which holds it exclusively
// from begin to end) is seen whole or not at all, and nothing a reader
// caches predates a change that end has already dropped from the caches.

// ReadDir lists dir in on-disk order, without "." and "..".
func (f *FS) ReadDir(ino volume.Ino) ([]volume.DirEntry, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.readDir(ino)
}

// Lookup finds name in dir (names are compared byte for byte).
func (f *FS) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.lookup(dir, name)
}

// GetAttr returns the attributes of inode ino.
func (f *FS) GetAttr(ino volume.Ino) (volume.Attr, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.getAttr(ino)
}

// ReadAt reads the content of a regular file.
func (f *FS) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.readAt(ino, p, off)
}

// Readlink returns a symbolic link's target.
func (f *FS) Readlink(ino volume.Ino) (string, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.readlink(ino)
}

// ListXattr lists the user.* attributes.
func (f *FS) ListXattr(ino volume.Ino) ([]string, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.listXattr(ino)
}

// GetXattr returns a user.* attribute; ENODATA when absent.
func (f *FS) GetXattr(ino volume.Ino, name string) ([]byte, error) {
	f.rw.RLock()
	defer f.rw.RUnlock()
	return f.getXattr(ino, name)
}
