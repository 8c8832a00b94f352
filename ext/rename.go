package ext

import (
	"fmt"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// Rename moves oldName in oldDir to newName in newDir, replacing a file
// or an empty directory there, as rename(2).
func (f *FS) Rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	_, err := f.locked(func() (uint32, error) {
		return uint32(oldDir), f.rename(oldDir, oldName, newDir, newName)
	})
	return err
}

func (f *FS) rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	if err := checkName(newName); err != nil {
		return err
	}
	od, err := f.inoArg(oldDir)
	if err != nil {
		return err
	}
	nd, err := f.inoArg(newDir)
	if err != nil {
		return err
	}
	op, err := f.dirForWrite(od)
	if err != nil {
		return err
	}
	np := op
	if nd != od {
		if np, err = f.dirForWrite(nd); err != nil {
			return err
		}
	}
	src, err := f.childOf(op, oldName)
	if err != nil {
		return err
	}
	if src.isDir() && nd != od {
		if err := f.checkNotInside(src.ino, nd); err != nil {
			return err
		}
	}
	dst, _, exists, err := f.findEntry(np, newName)
	if err != nil {
		return err
	}
	ft := ftypeOf(src.mode())
	if exists {
		if dst == src.ino {
			return nil // two names of one file: rename(2) does nothing
		}
		if err := f.replace(np, newName, src, dst, ft); err != nil {
			return err
		}
	} else if err := f.addEntry(np, newName, src.ino, ft); err != nil {
		return err
	}
	if err := f.removeEntry(op, oldName); err != nil {
		return err
	}
	if src.isDir() && nd != od {
		if err := f.setDotDot(src, nd); err != nil {
			return err
		}
		op.setLinks(op.links() - 1)
		np.setLinks(np.links() + 1)
	}
	touch(op)
	touch(np)
	src.setCtime(time.Now())
	for _, r := range []*rino{op, np, src} {
		if err := f.storeRaw(r); err != nil {
			return err
		}
	}
	return nil
}

// replace points newName in np at src and drops the inode dst it named.
func (f *FS) replace(np *rino, newName string, src *rino, dst uint32, ft byte) error {
	dr, err := f.loadRaw(dst)
	if err != nil {
		return err
	}
	switch {
	case dr.isDir() && !src.isDir():
		return fmt.Errorf("ext: %q is a directory: %w", newName, syscall.EISDIR)
	case !dr.isDir() && src.isDir():
		return fmt.Errorf("ext: %q is not a directory: %w", newName, syscall.ENOTDIR)
	case dr.isDir():
		if err := f.checkEmpty(dr); err != nil {
			return err
		}
		np.setLinks(np.links() - 1) // its ".." goes
	}
	if err := f.setEntryIno(np, newName, src.ino, ft); err != nil {
		return err
	}
	return f.dropLink(dr)
}

// checkNotInside refuses to move directory ino under itself: it walks
// ".." from dir up to the root.
func (f *FS) checkNotInside(ino, dir uint32) error {
	seen := map[uint32]bool{}
	for dir != rootIno {
		if dir == ino {
			return fmt.Errorf("ext: cannot move directory %d inside itself: %w", ino, syscall.EINVAL)
		}
		if seen[dir] {
			return fmt.Errorf("ext: directory %d: '..' chain loops: %w", dir, syscall.EIO)
		}
		seen[dir] = true
		r, err := f.loadRaw(dir)
		if err != nil {
			return err
		}
		parent, _, ok, err := f.findEntry(r, "..")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("ext: directory %d has no '..': %w", dir, syscall.EIO)
		}
		dir = parent
	}
	return nil
}
