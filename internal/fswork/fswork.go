// Package fswork makes random changes to a file system through the
// volume interfaces, for tests that compare two ways of seeing them (a
// commit's pruned summary against the whole walk; an engine's changed
// files against the bytes that changed).
package fswork

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/offvm/offvm/volume"
)

// Workload makes random changes of every kind an engine has (create,
// write, write of the same bytes, truncate, rename, link, unlink, mkdir,
// rmdir, times, attributes, named streams, symlinks) through the volume
// interfaces; OK counts those that succeeded.
type Workload struct {
	fs  volume.FS
	rng *rand.Rand
	OK  int
}

// New is a workload on fs (which must be a volume.Writer) drawn from rng.
func New(fs volume.FS, rng *rand.Rand) *Workload { return &Workload{fs: fs, rng: rng} }

func (w *Workload) name() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	n := 1 + w.rng.IntN(12)
	if w.rng.IntN(20) == 0 {
		n = 200 + w.rng.IntN(50) // long names move $FILE_NAMEs to extension records
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[w.rng.IntN(len(letters))]
	}
	return string(b)
}

// Pick walks down from the root to a random directory, and returns it
// with one random entry of it (Name "" when it is empty).
func (w *Workload) Pick() (volume.Ino, volume.DirEntry) {
	dir := w.fs.Root()
	for depth := 0; depth < 6; depth++ {
		es, err := w.fs.ReadDir(dir)
		if err != nil || len(es) == 0 {
			return dir, volume.DirEntry{}
		}
		e := es[w.rng.IntN(len(es))]
		if e.Mode.IsDir() && w.rng.IntN(3) > 0 {
			dir = e.Ino
			continue
		}
		return dir, e
	}
	return dir, volume.DirEntry{}
}

func (w *Workload) pickDir() volume.Ino {
	dir, e := w.Pick()
	if e.Mode.IsDir() && w.rng.IntN(2) == 0 {
		return e.Ino
	}
	return dir
}

func (w *Workload) data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(w.rng.IntN(4)) // compressible, not all zeros
	}
	return b
}

// Step makes one random change; errors (a name taken, a directory not
// empty, a rename into itself) are what a user would meet too.
func (w *Workload) Step() {
	wr := w.fs.(volume.Writer)
	dir, e := w.Pick()
	var err error
	switch op := w.rng.IntN(14); {
	case op < 3:
		var a volume.Attr
		if a, err = wr.Create(dir, w.name(), 0o644); err == nil {
			_, err = wr.WriteAt(a.Ino, w.data(w.rng.IntN(3)*w.rng.IntN(9000)), 0)
		}
	case op == 3:
		_, err = wr.Mkdir(dir, w.name(), 0o755)
	case e.Name == "":
		return
	case op == 4 && !e.Mode.IsDir():
		a, _ := w.fs.GetAttr(e.Ino)
		_, err = wr.WriteAt(e.Ino, w.data(1+w.rng.IntN(5000)), w.rng.Int64N(a.Size+1))
	case op == 5 && !e.Mode.IsDir():
		// the same bytes again: the mtime moves, the content does not
		a, _ := w.fs.GetAttr(e.Ino)
		buf := make([]byte, a.Size)
		if _, err = w.fs.ReadAt(e.Ino, buf, 0); err == nil || a.Size > 0 {
			_, err = wr.WriteAt(e.Ino, buf, 0)
		}
	case op == 6 && !e.Mode.IsDir():
		err = wr.Truncate(e.Ino, w.rng.Int64N(20000))
	case op == 7:
		name := e.Name
		if w.rng.IntN(2) == 0 {
			name = w.name()
		}
		err = wr.Rename(dir, e.Name, w.pickDir(), name)
	case op == 8 && !e.Mode.IsDir():
		_, err = w.fs.(volume.Linker).Link(e.Ino, w.pickDir(), w.name())
	case op == 9 && !e.Mode.IsDir():
		err = wr.Unlink(dir, e.Name)
	case op == 9:
		err = wr.Rmdir(dir, e.Name)
	case op == 10:
		t := time.Date(2020+w.rng.IntN(6), 1, 1, 0, 0, w.rng.IntN(1e6), 0, time.UTC)
		err = w.fs.(volume.Timer).SetTimes(e.Ino, nil, &t)
	case op == 11:
		attrib := make([]byte, 4)
		binary.LittleEndian.PutUint32(attrib, uint32(w.rng.IntN(2))) // read-only or not: chmod
		err = w.fs.(volume.Xattrer).SetXattr(e.Ino, "system.ntfs_attrib", attrib)
	case op == 12:
		x := w.fs.(volume.Xattrer)
		if w.rng.IntN(3) == 0 {
			err = x.RemoveXattr(e.Ino, "user.ads")
		} else {
			err = x.SetXattr(e.Ino, "user.ads", w.data(w.rng.IntN(3000)))
		}
	default:
		_, err = w.fs.(volume.Symlinker).Symlink(dir, w.name(), "target/"+w.name())
	}
	if err == nil {
		w.OK++
	}
}
