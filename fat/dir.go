package fat

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/offvm/offvm/internal/devio"
)

// dirData is a directory's raw entries, held in memory (in Volume.dirs)
// and written through to the device slot by slot, and its parsed listing.
type dirData struct {
	fixed    bool  // the FAT12/16 root: a fixed region, cannot grow
	base     int64 // device offset of the fixed region
	clusters []uint32
	data     []byte

	list   []*node // listing in slot order; nil when stale
	byName map[string]*node
	// caseTwins: another system left names equal but for case here.
	caseTwins bool
}

func (v *Volume) slotOffset(d *dirData, i int) int64 {
	off := int64(i) * direntSize
	if d.fixed {
		return d.base + off
	}
	return v.g.clusterOffset(d.clusters[off/v.g.clusterSize]) + off%v.g.clusterSize
}

// writeSlots writes slots [from, to) of d to the device, one run per
// cluster.
func (v *Volume) writeSlots(d *dirData, from, to int) error {
	per := int(v.g.clusterSize / direntSize)
	for i := from; i < to; {
		end := to
		if !d.fixed {
			end = min(to, (i/per+1)*per)
		}
		if err := devio.Write(v.dev, d.data[i*direntSize:end*direntSize], v.slotOffset(d, i)); err != nil {
			return fmt.Errorf("fat: writing directory entries: %w", err)
		}
		i = end
	}
	return nil
}

// loadDir returns a directory's entries with their listing: from the
// cache, else read from the device and parsed. A reader holds v.lazy, a
// writer mu exclusively.
func (v *Volume) loadDir(n *node) (*dirData, error) {
	d, ok := v.dirs.Get(n.ino)
	if !ok {
		var err error
		if d, err = v.readDirData(n); err != nil {
			return nil, err
		}
	}
	if !ok || d.list == nil {
		v.parseListing(n, d)
		v.cacheDir(n, d)
	}
	return d, nil
}

func (v *Volume) readDirData(n *node) (*dirData, error) {
	if n == v.root && v.g.kind != 32 {
		d := &dirData{fixed: true, base: v.g.rootStart, data: make([]byte, v.g.rootSize)}
		if _, err := v.dev.ReadAt(d.data, d.base); err != nil {
			return nil, fmt.Errorf("fat: reading root directory: %w", syscall.EIO)
		}
		return d, nil
	}
	// A directory holding one of its ancestors would make an endless tree.
	for p := n.parent; p != nil; p = p.parent {
		if p.ent.cluster == n.ent.cluster {
			return nil, corrupt("directory %q is its own ancestor (cluster %d)", n.name, n.ent.cluster)
		}
	}
	chain, err := v.chain(n.ent.cluster)
	if err != nil {
		return nil, fmt.Errorf("fat: directory %q: %w", n.name, err)
	}
	if limit := int(maxDirBytes / v.g.clusterSize); len(chain) > limit && limit > 0 {
		chain = chain[:limit]
	}
	d := &dirData{clusters: chain, data: make([]byte, int64(len(chain))*v.g.clusterSize)}
	for i, c := range chain {
		if _, err := v.dev.ReadAt(d.data[int64(i)*v.g.clusterSize:int64(i+1)*v.g.clusterSize], v.g.clusterOffset(c)); err != nil {
			return nil, fmt.Errorf("fat: reading directory %q cluster %d: %w", n.name, c, syscall.EIO)
		}
	}
	return d, nil
}

// rawEntry is one name found in a directory.
type rawEntry struct {
	name        string
	first, slot int
	ent         dirent
}

// parseEntries walks the slots: long-name runs are kept only when their
// sequence numbers and checksum match the 8.3 entry that follows;
// deleted entries, volume labels, "." and ".." are skipped.
func parseEntries(data []byte) []rawEntry {
	var out []rawEntry
	var units []uint16
	expect, first := 0, -1
	var sum byte
	reset := func() { units, expect, first = nil, 0, -1 }
	for i := 0; i < len(data)/direntSize; i++ {
		b := data[i*direntSize : (i+1)*direntSize]
		if b[0] == slotEnd {
			break
		}
		if b[0] == slotFree {
			reset()
			continue
		}
		if b[11]&0x3f == attrLFN {
			ord := int(b[0] & 0x1f)
			if b[0]&lfnLast != 0 {
				reset()
				if ord == 0 || ord > maxLFNParts {
					continue
				}
				units, expect, first, sum = make([]uint16, ord*lfnUnits), ord, i, b[13]
			}
			if expect == 0 || ord != expect || b[13] != sum {
				reset()
				continue
			}
			lfnUnitsOf(b, units[(ord-1)*lfnUnits:ord*lfnUnits])
			expect--
			continue
		}
		e := decodeDirent(b)
		if e.attr&attrVolumeID != 0 || b[0] == '.' {
			reset()
			continue
		}
		re := rawEntry{first: i, slot: i, ent: e}
		if units != nil && expect == 0 && lfnChecksum(e.name) == sum {
			re.name, re.first = lfnDecode(units), first
		}
		if checkStoredName(re.name) != nil {
			// No usable long name: show the 8.3 one (its long-name slots,
			// if any, still belong to the entry and go with it).
			re.name = shortDisplay(e.name, e.ntres)
		}
		out = append(out, re)
		reset()
	}
	return out
}

// checkStoredName accepts any name a path can carry (what another system
// wrote is shown even if offvm would not create it).
func checkStoredName(s string) error {
	if s == "" || s == "." || s == ".." {
		return syscall.EINVAL
	}
	for _, r := range s {
		if r == '/' || r == 0 {
			return syscall.EINVAL
		}
	}
	return nil
}

// parseListing rebuilds a directory's listing, keeping the nodes (and so
// the Inos) already known for each 8.3 slot.
func (v *Volume) parseListing(n *node, d *dirData) {
	entries := parseEntries(d.data)
	d.list = make([]*node, 0, len(entries))
	d.byName = make(map[string]*node, len(entries))
	d.caseTwins = false
	if n.children == nil {
		n.children = map[int]*node{}
	}
	for _, e := range entries {
		c := n.children[e.slot]
		if c == nil {
			c = &node{ino: v.nextIno, parent: n, slot: e.slot, ent: e.ent}
			v.nextIno++
			v.nodes[c.ino] = c
			n.children[e.slot] = c
		}
		c.name, c.first = e.name, e.first
		d.list = append(d.list, c)
		if k := fold(c.name); d.byName[k] == nil {
			d.byName[k] = c
		} else {
			d.caseTwins = true
		}
	}
}

// findLabel looks for the volume label entry in the root directory.
func (v *Volume) findLabel(root *dirData) string {
	d := root.data
	for i := 0; i+direntSize <= len(d); i += direntSize {
		b := d[i : i+direntSize]
		if b[0] == slotEnd {
			break
		}
		if b[0] != slotFree && b[11]&0x3f != attrLFN && b[11]&attrVolumeID != 0 {
			return labelString(b[:11])
		}
	}
	return v.g.bootLabel
}

func labelString(b []byte) string {
	rs := make([]rune, len(b))
	for i, c := range b {
		rs[i] = rune(c)
	}
	return strings.TrimRight(string(rs), " ")
}
