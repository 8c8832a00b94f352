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
func volumes(a, b *mount.Image) ([]Change, error) {
	va, vb := byNumber(a), byNumber(b)
	var out []Change
	for n, x := range va {
		y := vb[n]
		name := fmt.Sprintf("p%d:", n)
		switch {
		case y == nil:
			out = append(out, Change{Op: "-", Kind: "volume", Path: name})
		case x.FS != nil && y.FS != nil:
			w := &walker{a: x.FS, b: y.FS, bufA: make([]byte, 1<<20), bufB: make([]byte, 1<<20)}
			if err := w.dir(name+"/", x.FS.Root(), y.FS.Root(), 0); err != nil {
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

// walker compares two trees.
type walker struct {
	a, b       volume.FS
	out        []Change
	bufA, bufB []byte
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
	ea, err := w.a.ReadDir(da)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	eb, err := w.b.ReadDir(db)
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
		p := path + x.Name
		if !ok {
			if err := w.whole("-", w.a, p, x); err != nil {
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
			if err := w.whole("+", w.b, path+y.Name, y); err != nil {
				return err
			}
		}
	}
	return nil
}

// whole reports an entry only one side has, with everything below it.
func (w *walker) whole(op string, fs volume.FS, p string, e volume.DirEntry) error {
	at, err := fs.GetAttr(e.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	c := Change{Op: op, Kind: kind(at.Mode), Path: p, Size: at.Size}
	if c.Kind == "link" {
		t, _ := fs.Readlink(e.Ino)
		c.New = t
	}
	w.out = append(w.out, c)
	if c.Kind != "dir" {
		return nil
	}
	es, err := fs.ReadDir(e.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, x := range es {
		if err := w.whole(op, fs, p+"/"+x.Name, x); err != nil {
			return err
		}
	}
	return nil
}

// entry compares a name both sides have. Files of the same size and
// mtime count as the same (rsync's quick check); otherwise their bytes
// are compared.
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
	case kx == "link":
		tx, _ := w.a.Readlink(x.Ino)
		ty, _ := w.b.Readlink(y.Ino)
		if tx != ty {
			w.out = append(w.out, Change{Op: "~", Kind: "link", Path: p, New: ty})
		}
	case ax.Size != ay.Size:
		w.out = append(w.out, Change{Op: "~", Kind: "file", Path: p, Size: ay.Size})
	case !ax.Mtime.Equal(ay.Mtime):
		same, err := w.sameBytes(x.Ino, y.Ino, ax.Size)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !same {
			w.out = append(w.out, Change{Op: "~", Kind: "file", Path: p, Size: ay.Size})
		}
	}
	return nil
}

func (w *walker) sameBytes(x, y volume.Ino, size int64) (bool, error) {
	for off := int64(0); off < size; off += int64(len(w.bufA)) {
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
