package guestdiff

import (
	"fmt"
	"log/slog"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/txn"
	"github.com/offvm/offvm/volume"
)

// A commit's summary compares only what the commit's bytes can have
// changed. The overlay says which extents of the virtual disk the commit
// writes (txn's Extents); an engine that is a volume.ChangeFinder maps
// them, on each side, to the files whose metadata they hold (NTFS: MFT
// records and INDX blocks). The walk is then the whole walk with two
// shortcuts: a name both sides have, for the same file, that neither
// side lists as touched and that holds nothing touched, is skipped
// without a stat; a directory neither side touched (walked for what is
// below it) is listed once. Everything the walk compares of those (kind,
// size, mtime, link target, listing) lives in bytes that did not change,
// so the whole walk would have found nothing there either: the record
// is the same, renames, counts and MaxListed included. Anything else (an
// engine without the capability, an encrypted or LVM volume, an error
// while mapping) walks the whole volume, as offvm diff between two
// images always does.

// pruned is what the walk may skip: names both sides have whose files
// are neither dirty nor within (a directory holding something dirty, on
// either side).
type pruned struct {
	dirty, within map[volume.Ino]bool
	exts          []volume.Extent // the changed bytes, as device offsets
}

// keep reports whether the walk must compare file ino wherever it is.
func (p *pruned) keep(ino volume.Ino) bool { return p.dirty[ino] || p.within[ino] }

// skips reports whether x (before) and y (after), one name both sides
// have, can be left out of the walk.
func (p *pruned) skips(x, y volume.DirEntry) bool {
	return p != nil && x.Ino == y.Ino && !p.dirty[x.Ino] && !p.within[x.Ino]
}

// sameListing reports whether directory a (before) and b (after) list
// the same names: one directory neither side touched, walked only for
// what is below it (its listing lives in its records and index blocks,
// and a changed index block touches the directory it belongs to).
func (p *pruned) sameListing(a, b volume.Ino) bool {
	return p != nil && a == b && !p.dirty[a]
}

// pruneFor maps the commit's changed extents to what the walk of
// partition x (before) and y (after) must visit; nil means walk it all.
func pruneFor(x, y *mount.Volume, changed []txn.Extent) *pruned {
	p, err := pruneVolume(x, y, changed)
	if err != nil {
		slog.Debug("history: the whole volume is compared", "partition", x.Partition.Number, "why", err)
		return nil
	}
	return p
}

func pruneVolume(x, y *mount.Volume, changed []txn.Extent) (*pruned, error) {
	sa, za, okA := x.DiskRange()
	sb, zb, okB := y.DiskRange()
	if !okA || !okB || sa != sb || za != zb {
		return nil, fmt.Errorf("the file system is not a plain partition of the disk")
	}
	fa, okA := x.FS.(volume.ChangeFinder)
	fb, okB := y.FS.(volume.ChangeFinder)
	if !okA || !okB {
		return nil, fmt.Errorf("%s cannot map changed bytes to files", x.FS.Type())
	}
	exts := clip(changed, sa, za)
	p := &pruned{dirty: map[volume.Ino]bool{}, within: map[volume.Ino]bool{}, exts: exts}
	for _, f := range []volume.ChangeFinder{fa, fb} {
		if err := p.add(f, exts); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// clip turns disk extents into device offsets of the partition at start.
func clip(changed []txn.Extent, start, size int64) []volume.Extent {
	var out []volume.Extent
	for _, e := range changed {
		lo, hi := max(e.Off, start), min(e.Off+e.Len, start+size)
		if lo < hi {
			out = append(out, volume.Extent{Off: lo - start, Len: hi - lo})
		}
	}
	return out
}

// add marks what one side says the extents touch, and every directory
// above it on that side.
func (p *pruned) add(f volume.ChangeFinder, exts []volume.Extent) error {
	inos, err := f.Touched(exts)
	if err != nil {
		return err
	}
	seen := map[volume.Ino]bool{}
	queue := inos
	for len(queue) > 0 {
		ino := queue[0]
		queue = queue[1:]
		ps, err := f.Parents(ino)
		if err != nil {
			return err
		}
		for _, d := range ps {
			if !seen[d] {
				seen[d], p.within[d] = true, true
				queue = append(queue, d)
			}
		}
	}
	for _, ino := range inos {
		p.dirty[ino] = true
	}
	return nil
}

// listings lists directory da (before) and db (after) for the walk. A
// directory a commit touched is listed narrowed when the engine can
// (volume.ListingNarrower): the names it leaves out are ones skips would
// pass over, so the walk finds what the whole listings give. One neither
// side touched is listed once (sameListing).
func (w *walker) listings(da, db volume.Ino) (ea, eb []volume.DirEntry, err error) {
	if n, ok := w.a.(volume.ListingNarrower); ok && w.prune != nil && da == db && w.prune.dirty[da] {
		ea, eb, left, err := n.NarrowListings(da, w.b, w.prune.exts, w.prune.keep)
		if err == nil {
			w.lim.skipped += left
			w.lim.narrowed++
			return ea, eb, nil
		}
		slog.Debug("history: a directory is listed whole", "dir", da, "why", err)
	}
	if ea, err = w.a.ReadDir(da); err != nil {
		return nil, nil, err
	}
	if w.prune.sameListing(da, db) {
		return ea, ea, nil
	}
	eb, err = w.b.ReadDir(db)
	return ea, eb, err
}
