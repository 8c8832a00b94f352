package fat

import (
	"fmt"
	"slices"
	"syscall"
)

// freeRun finds count consecutive unused slots, or -1.
func freeRun(data []byte, count int) int {
	run := 0
	for i := 0; i < len(data)/direntSize; i++ {
		b := data[i*direntSize]
		if b == slotEnd {
			// Everything after the end mark is unused.
			if len(data)/direntSize-(i-run) >= count {
				return i - run
			}
			return -1
		}
		if b == slotFree {
			run++
			if run == count {
				return i - run + 1
			}
		} else {
			run = 0
		}
	}
	return -1
}

// growDir adds a zeroed cluster to directory n, whose entries are d.
func (v *Volume) growDir(n *node, d *dirData) error {
	if d.fixed {
		return fmt.Errorf("fat: root directory is full: %w", syscall.ENOSPC)
	}
	if int64(len(d.data))+v.g.clusterSize > maxDirBytes {
		return fmt.Errorf("fat: directory %q holds the most entries FAT allows: %w", n.name, syscall.ENOSPC)
	}
	cs, err := v.allocate(1)
	if err != nil {
		return err
	}
	if err := v.zeroClusters(cs); err != nil {
		v.release(cs)
		return err
	}
	v.fat.set(d.clusters[len(d.clusters)-1], cs[0])
	d.clusters = append(d.clusters, cs[0])
	d.data = append(d.data, make([]byte, v.g.clusterSize)...)
	return nil
}

// shortTaken reports whether an 8.3 name is used in directory entries dd
// (the set is built once per new entry, so ~N tails do not rescan the
// directory).
func shortTaken(dd *dirData) func([11]byte) bool {
	taken := map[[11]byte]bool{}
	d := dd.data
	for i := 0; i+direntSize <= len(d); i += direntSize {
		b := d[i : i+direntSize]
		if b[0] == slotEnd {
			break
		}
		if b[0] != slotFree && b[11]&0x3f != attrLFN {
			taken[[11]byte(b[:11])] = true
		}
	}
	return func(s [11]byte) bool { return taken[s] }
}

// addEntry writes a new name for ent into directory dir and returns its
// node (a new one, or moved when reuse is given, keeping its Ino).
func (v *Volume) addEntry(dir *node, name string, ent dirent, reuse *node) (*node, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	d, err := v.loadDir(dir)
	if err != nil {
		return nil, err
	}
	if c := d.byName[fold(name)]; c != nil && c != reuse {
		return nil, fmt.Errorf("fat: %q exists (as %q): %w", name, c.name, syscall.EEXIST)
	}
	short, ntres, long, ok := shortFor(name, shortTaken(d))
	if !ok {
		return nil, fmt.Errorf("fat: no free 8.3 name for %q: %w", name, syscall.EEXIST)
	}
	ent.name, ent.ntres = short, ent.ntres&^(ntLowerBase|ntLowerExt)|ntres
	var slots [][direntSize]byte
	if long {
		slots = lfnEncode(name, lfnChecksum(short))
	}
	var se [direntSize]byte
	ent.encode(se[:])
	slots = append(slots, se)
	at := freeRun(d.data, len(slots))
	for at < 0 {
		if err := v.growDir(dir, d); err != nil {
			return nil, err
		}
		v.cacheDir(dir, d)
		at = freeRun(d.data, len(slots))
	}
	for i, s := range slots {
		copy(d.data[(at+i)*direntSize:], s[:])
	}
	if err := v.writeSlots(d, at, at+len(slots)); err != nil {
		return nil, err
	}
	n := reuse
	if n == nil {
		n = &node{ino: v.nextIno}
		v.nextIno++
		v.nodes[n.ino] = n
	}
	n.parent, n.first, n.slot, n.name, n.ent, n.gone = dir, at, at+len(slots)-1, name, ent, false
	dir.children[n.slot] = n
	listInsert(d, n)
	v.cacheDir(dir, d)
	return n, nil
}

// dropEntry marks a node's slots deleted in its parent directory.
func (v *Volume) dropEntry(n *node) error {
	p := n.parent
	d, err := v.loadDir(p)
	if err != nil {
		return err
	}
	for i := n.first; i <= n.slot; i++ {
		d.data[i*direntSize] = slotFree
	}
	delete(p.children, n.slot)
	listRemove(d, n)
	v.cacheDir(p, d)
	return v.writeSlots(d, n.first, n.slot+1)
}

// writeEnt writes a node's 8.3 entry back to its parent directory.
func (v *Volume) writeEnt(n *node) error {
	if n.parent == nil {
		return nil // the root has no entry
	}
	d, err := v.loadDir(n.parent)
	if err != nil {
		return err
	}
	n.ent.encode(d.data[n.slot*direntSize:])
	return v.writeSlots(d, n.slot, n.slot+1)
}

// listInsert adds n to a parsed listing in slot order (no re-parse).
func listInsert(dir *dirData, n *node) {
	if dir.list == nil {
		return
	}
	i, _ := slices.BinarySearchFunc(dir.list, n.slot, func(c *node, slot int) int { return c.slot - slot })
	dir.list = slices.Insert(dir.list, i, n)
	if k := fold(n.name); dir.byName[k] == nil {
		dir.byName[k] = n
	}
}

// listRemove drops n from a parsed listing.
func listRemove(dir *dirData, n *node) {
	if dir.list == nil {
		return
	}
	if i := slices.Index(dir.list, n); i >= 0 {
		dir.list = slices.Delete(dir.list, i, i+1)
	}
	k := fold(n.name)
	if dir.byName[k] == n {
		delete(dir.byName, k)
		if !dir.caseTwins {
			return
		}
		// Another entry may carry the same folded name (written elsewhere).
		for _, c := range dir.list {
			if fold(c.name) == k {
				dir.byName[k] = c
				break
			}
		}
	}
}
