package guestdiff

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// maxDepth bounds the directory recursion (a corrupt volume may loop).
const maxDepth = 256

// volumes compares the file systems the two images have, by partition
// number.
func volumes(a, b *mount.Image, lim *limits) ([]Change, error) {
	va, vb := byNumber(a), byNumber(b)
	var out []Change
	for n, x := range va {
		y := vb[n]
		name := fmt.Sprintf("p%d:", n)
		switch {
		case y == nil:
			out = append(out, Change{Op: "-", Kind: "volume", Path: name})
		case x.FS != nil && y.FS != nil:
			w := newWalker(x.FS, y.FS, lim)
			if lim.changesKnown {
				if w.prune = pruneFor(x, y, lim.changed); w.prune != nil {
					lim.pruned++
				}
			}
			if err := w.volume(name+"/", x.FS.Root(), y.FS.Root()); err != nil {
				return nil, fmt.Errorf("%s %s: %w", a.Path, name, err)
			}
			out = append(out, w.out...)
		}
	}
	for n := range vb {
		if va[n] == nil {
			out = append(out, Change{Op: "+", Kind: "volume", Path: fmt.Sprintf("p%d:", n)})
		}
	}
	return out, nil
}

func byNumber(im *mount.Image) map[int]*mount.Volume {
	m := map[int]*mount.Volume{}
	for _, v := range im.Volumes() {
		if v.FSType != "" {
			m[v.Partition.Number] = v
		}
	}
	return m
}

// walker compares two trees. Names only one side has are collected as
// orphans, with everything below them, and paired into renames once the
// whole volume is walked (a file may move anywhere in it).
type walker struct {
	a, b       volume.FS
	out        []Change
	bufA, bufB []byte
	lim        *limits
	gone, born []orphan // only in a, only in b; parents before children
	prune      *pruned  // what a commit's walk may skip; nil: nothing
}

func newWalker(a, b volume.FS, lim *limits) *walker {
	if lim == nil {
		lim = &limits{}
	}
	return &walker{a: a, b: b, lim: lim, bufA: make([]byte, 1<<20), bufB: make([]byte, 1<<20)}
}

// volume walks the trees from their roots and then reports the orphans.
func (w *walker) volume(prefix string, ra, rb volume.Ino) error {
	if err := w.dir(prefix, ra, rb, 0); err != nil {
		return err
	}
	return w.orphans()
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&os.ModeSymlink != 0:
		return "link"
	}
	return "file"
}

func (w *walker) dir(path string, da, db volume.Ino, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", path, maxDepth)
	}
	if err := w.lim.check(); err != nil {
		return err
	}
	ea, eb, err := w.listings(da, db)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	inB := map[string]volume.DirEntry{}
	for _, e := range eb {
		inB[e.Name] = e
	}
	for _, x := range ea {
		y, ok := inB[x.Name]
		delete(inB, x.Name)
		if ok && w.prune.skips(x, y) {
			w.lim.skipped++
			continue // nothing it holds changed (pruned.go)
		}
		p := path + x.Name
		if !ok {
			if err := w.collect(&w.gone, w.a, p, x, -1, depth); err != nil {
				return err
			}
			continue
		}
		if err := w.entry(p, x, y, depth); err != nil {
			return err
		}
	}
	for _, y := range eb {
		if _, ok := inB[y.Name]; ok {
			if err := w.collect(&w.born, w.b, path+y.Name, y, -1, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry compares a name both sides have.
func (w *walker) entry(p string, x, y volume.DirEntry, depth int) error {
	ax, err := w.a.GetAttr(x.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	ay, err := w.b.GetAttr(y.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	kx, ky := kind(ax.Mode), kind(ay.Mode)
	switch {
	case kx != ky:
		w.out = append(w.out, Change{Op: "-", Kind: kx, Path: p, Size: ax.Size}, Change{Op: "+", Kind: ky, Path: p, Size: ay.Size})
	case kx == "dir":
		return w.dir(p+"/", x.Ino, y.Ino, depth+1)
	default:
		return w.content(p, x.Ino, y.Ino, ax, ay)
	}
	return nil
}

// content reports a file or link that both sides have (under the same
// name or, renamed, under another one) when it differs. Files of the
// same size and mtime count as the same (rsync's quick check); otherwise
// their bytes are compared.
func (w *walker) content(p string, x, y volume.Ino, ax, ay volume.Attr) error {
	switch {
	case kind(ax.Mode) == "link":
		tx, _ := w.a.Readlink(x)
		ty, _ := w.b.Readlink(y)
		if tx != ty {
			w.out = append(w.out, Change{Op: "~", Kind: "link", Path: p, Old: tx, New: ty})
		}
	case ax.Size != ay.Size:
		w.out = append(w.out, Change{Op: "~", Kind: "file", Path: p, Size: ay.Size})
	case !ax.Mtime.Equal(ay.Mtime):
		same, err := w.sameBytes(x, y, ax.Size)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !same {
			w.out = append(w.out, Change{Op: "~", Kind: "file", Path: p, Size: ay.Size})
		}
	}
	return nil
}

// sameBytes compares two files' bytes. Past the byte budget a file
// counts as changed without a look: the list may then say "~" of a file
// only touched, never miss a change.
func (w *walker) sameBytes(x, y volume.Ino, size int64) (bool, error) {
	if !w.lim.spend(2 * size) {
		return false, nil
	}
	for off := int64(0); off < size; off += int64(len(w.bufA)) {
		if err := w.lim.check(); err != nil {
			return false, err
		}
		n := int(min(int64(len(w.bufA)), size-off))
		if _, err := w.a.ReadAt(x, w.bufA[:n], off); err != nil && err != io.EOF {
			return false, err
		}
		if _, err := w.b.ReadAt(y, w.bufB[:n], off); err != nil && err != io.EOF {
			return false, err
		}
		if !bytes.Equal(w.bufA[:n], w.bufB[:n]) {
			return false, nil
		}
	}
	return true, nil
}
