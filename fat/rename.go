package fat

import (
	"fmt"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Rename moves oldName in oldDir to newName in newDir, replacing a file or
// an empty directory there as rename(2) does. The node keeps its Ino; a
// moved directory's ".." is pointed at its new parent.
func (v *Volume) Rename(oldDir volume.Ino, oldName string, newDir volume.Ino, newName string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return err
	}
	od, n, err := v.lookupChild(oldDir, oldName)
	if err != nil {
		return err
	}
	nd, ndd, err := v.getDir(newDir)
	if err != nil {
		return err
	}
	if err := checkName(newName); err != nil {
		return err
	}
	if n.isDir() {
		for p := nd; p != nil; p = p.parent {
			if p == n {
				return fmt.Errorf("fat: cannot move %q into itself: %w", n.name, syscall.EINVAL)
			}
		}
	}
	target := ndd.byName[fold(newName)]
	if target == n && newName == n.name {
		return nil
	}
	if target != nil && target != n {
		if err := v.checkReplace(n, target); err != nil {
			return err
		}
		if err := v.remove(target); err != nil {
			return err
		}
	}
	if err := v.move(n, od, nd, newName); err != nil {
		return err
	}
	return v.flushMeta()
}

// checkReplace applies rename(2)'s rules for an existing target.
func (v *Volume) checkReplace(n, target *node) error {
	switch {
	case target.isDir() && !n.isDir():
		return fmt.Errorf("fat: %q is a directory: %w", target.name, syscall.EISDIR)
	case !target.isDir() && n.isDir():
		return fmt.Errorf("fat: %q is not a directory: %w", target.name, syscall.ENOTDIR)
	case target.isDir():
		return v.checkEmptyDir(target)
	}
	return nil
}

// move rewrites n's entry under a new name in nd. When the new entry
// cannot be written the old one is put back.
func (v *Volume) move(n, od, nd *node, newName string) error {
	odd, err := v.loadDir(od)
	if err != nil {
		return err
	}
	saved := append([]byte(nil), odd.data[n.first*direntSize:(n.slot+1)*direntSize]...)
	first, slot := n.first, n.slot
	if err := v.dropEntry(n); err != nil {
		return err
	}
	if _, err := v.addEntry(nd, newName, n.ent, n); err != nil {
		copy(odd.data[first*direntSize:], saved)
		od.children[slot] = n
		n.parent, n.first, n.slot = od, first, slot
		odd.list = nil // parsed again by the next loadDir
		v.cacheDir(od, odd)
		if werr := v.writeSlots(odd, first, slot+1); werr != nil {
			return werr
		}
		return err
	}
	if n.isDir() && od != nd {
		return v.setDotDot(n, v.dirCluster(nd))
	}
	return nil
}

// setDotDot points a directory's ".." entry at cluster c.
func (v *Volume) setDotDot(n *node, c uint32) error {
	dd, err := v.loadDir(n)
	if err != nil {
		return err
	}
	d := dd.data
	for i := 0; i < 2 && (i+1)*direntSize <= len(d); i++ {
		b := d[i*direntSize : (i+1)*direntSize]
		if string(b[:11]) == "..         " {
			e := decodeDirent(b)
			e.cluster = c
			e.encode(b)
			return v.writeSlots(dd, i, i+1)
		}
	}
	return corrupt("directory %q has no \"..\" entry", n.name)
}
