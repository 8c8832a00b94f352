package guestdiff

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/offvm/offvm/volume"
)

// A rename shows as one line, "> old -> new", instead of a delete and a
// create. Orphans (names only one side has) are paired, in this order:
//
//  1. by inode number (the MFT record on NTFS), when both sides are the
//     same volume before and after a commit and the engine's numbers are
//     the file system's own (not FAT's, which the engine makes up);
//  2. directories by their listings (names, kinds, sizes, mtimes of
//     what is directly in them), for FAT and for two images;
//  3. what is under a paired directory, by name;
//  4. files by content: same size and mtime (a rename keeps the mtime)
//     and the same bytes.
//
// A file renamed and changed shows as the rename and a "~" of its new
// name.

// stableIno lists the engines whose inode numbers are the file system's
// own, kept on disk from one open to the next.
var stableIno = map[string]bool{"ntfs": true, "ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true}

// maxCandidates bounds the files of one size and mtime a gone file is
// compared with.
const maxCandidates = 4

// orphan is a name only one side has, or something below one.
type orphan struct {
	path, name, kind, target string
	ino                      volume.Ino
	attr                     volume.Attr
	parent                   int // index in the same list, -1 for a name both parents have
	mate                     int // index of its pair in the other list, -1 for none
	children                 []int
}

// collect adds e and everything below it to list.
func (w *walker) collect(list *[]orphan, fs volume.FS, p string, e volume.DirEntry, parent, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", p, maxDepth)
	}
	at, err := fs.GetAttr(e.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	o := orphan{path: p, name: e.Name, kind: kind(at.Mode), ino: e.Ino, attr: at, parent: parent, mate: -1}
	if o.kind == "link" {
		o.target, _ = fs.Readlink(e.Ino)
	}
	*list = append(*list, o)
	idx := len(*list) - 1
	if parent >= 0 {
		(*list)[parent].children = append((*list)[parent].children, idx)
	}
	if o.kind != "dir" {
		return nil
	}
	if err := w.lim.check(); err != nil {
		return err
	}
	es, err := fs.ReadDir(e.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, x := range es {
		if err := w.collect(list, fs, p+"/"+x.Name, x, idx, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// orphans pairs the orphans and reports them.
func (w *walker) orphans() error {
	if w.lim.sameVolume && stableIno[w.a.Type()] && w.a.Type() == w.b.Type() {
		w.pairByIno()
	}
	w.pairDirs()
	w.pairChildren()
	if err := w.pairByContent(); err != nil {
		return err
	}
	return w.report()
}

func (w *walker) pair(g, n int) { w.gone[g].mate, w.born[n].mate = n, g }

func (w *walker) pairByIno() {
	byIno := map[volume.Ino]int{}
	for i, n := range w.born {
		if _, dup := byIno[n.ino]; !dup {
			byIno[n.ino] = i
		}
	}
	for i, g := range w.gone {
		if n, ok := byIno[g.ino]; ok && w.born[n].mate < 0 && w.born[n].kind == g.kind {
			w.pair(i, n)
		}
	}
}

// listing is what a directory orphan holds, as one string.
func (w *walker) listing(list []orphan, i int) string {
	var parts []string
	for _, c := range list[i].children {
		o := list[c]
		parts = append(parts, o.name+"\x00"+o.kind+"\x00"+strconv.FormatInt(o.attr.Size, 10)+"\x00"+strconv.FormatInt(o.attr.Mtime.UnixNano(), 10))
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x01")
}

func (w *walker) pairDirs() {
	bySig := map[string][]int{}
	for i, n := range w.born {
		if n.kind == "dir" && n.mate < 0 && len(n.children) > 0 {
			s := w.listing(w.born, i)
			bySig[s] = append(bySig[s], i)
		}
	}
	for i, g := range w.gone {
		if g.kind != "dir" || g.mate >= 0 || len(g.children) == 0 {
			continue
		}
		s := w.listing(w.gone, i)
		for k, n := range bySig[s] {
			if w.born[n].mate < 0 {
				w.pair(i, n)
				bySig[s] = bySig[s][k+1:]
				break
			}
		}
	}
}

// pairChildren pairs what has the same name and kind under two paired
// directories; parents come before children in both lists, so a paired
// directory's subdirectories are paired before what is in them.
func (w *walker) pairChildren() {
	for i, g := range w.gone {
		if g.mate >= 0 || g.parent < 0 || w.gone[g.parent].mate < 0 {
			continue
		}
		for _, c := range w.born[w.gone[g.parent].mate].children {
			if n := w.born[c]; n.mate < 0 && n.name == g.name && n.kind == g.kind {
				w.pair(i, c)
				break
			}
		}
	}
}

func (w *walker) pairByContent() error {
	type key struct {
		size  int64
		mtime int64
	}
	cands := map[key][]int{}
	for i, n := range w.born {
		if n.kind == "file" && n.mate < 0 && n.attr.Size > 0 {
			k := key{n.attr.Size, n.attr.Mtime.UnixNano()}
			cands[k] = append(cands[k], i)
		}
	}
	for i, g := range w.gone {
		if g.kind != "file" || g.mate >= 0 || g.attr.Size == 0 {
			continue
		}
		tried := 0
		for _, n := range cands[key{g.attr.Size, g.attr.Mtime.UnixNano()}] {
			if w.born[n].mate >= 0 {
				continue
			}
			if tried++; tried > maxCandidates {
				break
			}
			same, err := w.sameBytes(g.ino, w.born[n].ino, g.attr.Size)
			if err != nil {
				return fmt.Errorf("%s: %w", g.path, err)
			}
			if same {
				w.pair(i, n)
				break
			}
		}
	}
	return nil
}

// report lists the orphans: renames (one line where the parent's
// rename does not already say it), then what changed in a renamed file,
// deletes and creates.
func (w *walker) report() error {
	for _, g := range w.gone {
		if g.mate < 0 {
			w.out = append(w.out, Change{Op: "-", Kind: g.kind, Path: g.path, Size: g.attr.Size, Old: g.target})
			continue
		}
		n := w.born[g.mate]
		implied := g.parent >= 0 && n.parent >= 0 && w.gone[g.parent].mate == n.parent && g.name == n.name
		if !implied {
			w.out = append(w.out, Change{Op: ">", Kind: n.kind, Path: n.path, From: g.path, Size: n.attr.Size})
		}
		if g.kind != "dir" {
			if err := w.content(n.path, g.ino, n.ino, g.attr, n.attr); err != nil {
				return err
			}
		}
	}
	for _, n := range w.born {
		if n.mate < 0 {
			w.out = append(w.out, Change{Op: "+", Kind: n.kind, Path: n.path, Size: n.attr.Size, New: n.target})
		}
	}
	return nil
}
