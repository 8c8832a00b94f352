// Package fsrace runs parallel readers and writers against one file system
// engine, for tests under `go test -race`. Readers walk the whole tree and
// check the seeded files' bytes while writers create, grow, shrink, rename
// and delete files in their own directories; the caller then checks the
// image (with a tool no one here wrote) against the model Run returns.
package fsrace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"path"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// Options sizes a run.
type Options struct {
	Readers, Writers int
	Ops              int // operations per writer
	Passes           int // full walks per reader
	MaxFile          int // largest file a writer makes, in bytes
}

// Run races the readers and writers. seed holds the files already on the
// volume ("/dir/name" → content), which readers check on every pass. It
// returns the files the volume must hold at the end: seed plus what the
// writers left, under "/wN/...". Directories made by writers are in dirs.
func Run(t *testing.T, fs volume.FS, w volume.Writer, seed map[string][]byte, o Options) (files map[string][]byte, dirs []string) {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]map[string][]byte, o.Writers)
	for i := range o.Writers {
		dir := fmt.Sprintf("w%d", i)
		a, err := w.Mkdir(fs.Root(), dir, 0o755)
		if err != nil {
			t.Fatalf("mkdir %s: %v", dir, err)
		}
		dirs = append(dirs, "/"+dir)
		wg.Go(func() { results[i] = writer(t, fs, w, a.Ino, "/"+dir, rand.New(rand.NewSource(int64(i+1))), o) })
	}
	for i := range o.Readers {
		wg.Go(func() {
			for range o.Passes {
				walk(t, fs, fs.Root(), "", seed, i)
			}
		})
	}
	wg.Wait()
	files = map[string][]byte{}
	for p, b := range seed {
		files[p] = b
	}
	for _, r := range results {
		for p, b := range r {
			files[p] = b
		}
	}
	// What readers cached while the writers worked must not outlive the
	// changes: the engine itself now shows exactly the final files.
	seen := map[string]bool{}
	walkAll(t, fs, fs.Root(), "", files, seen)
	for p := range files {
		if !seen[p] {
			t.Errorf("after the run, %s is missing", p)
		}
	}
	return files, dirs
}

// walkAll checks that every regular file below dir is in want with its
// bytes, and marks it seen.
func walkAll(t *testing.T, fs volume.FS, dir volume.Ino, p string, want map[string][]byte, seen map[string]bool) {
	ents, err := fs.ReadDir(dir)
	if err != nil {
		t.Errorf("after the run: readdir %s: %v", p, err)
		return
	}
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." || e.Name == "lost+found" {
			continue
		}
		cp := p + "/" + e.Name
		a, err := fs.Lookup(dir, e.Name)
		switch {
		case err != nil:
			t.Errorf("after the run: lookup %s: %v", cp, err)
		case a.Mode.IsDir():
			walkAll(t, fs, a.Ino, cp, want, seen)
		default:
			got, err := readAll(fs, a.Ino)
			w, ok := want[cp]
			if !ok || err != nil || !bytes.Equal(got, w) || a.Size != int64(len(w)) {
				t.Errorf("after the run: %s has %d bytes (size %d, %v), want %d (in the model: %v)", cp, len(got), a.Size, err, len(w), ok)
			}
			seen[cp] = true
		}
	}
}

// gone is what a reader may meet in a writer's directory: an entry removed
// between its listing and its lookup.
func gone(err error) bool { return errors.Is(err, syscall.ENOENT) }

// walk visits dir and below; seeded files must read back exactly.
func walk(t *testing.T, fs volume.FS, dir volume.Ino, p string, seed map[string][]byte, id int) {
	ents, err := fs.ReadDir(dir)
	if err != nil {
		if !gone(err) {
			t.Errorf("reader %d: readdir %s: %v", id, p, err)
		}
		return
	}
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		cp := p + "/" + e.Name
		a, err := fs.Lookup(dir, e.Name)
		if err != nil {
			if !gone(err) {
				t.Errorf("reader %d: lookup %s: %v", id, cp, err)
			}
			continue
		}
		if _, err := fs.GetAttr(a.Ino); err != nil && !gone(err) {
			t.Errorf("reader %d: getattr %s: %v", id, cp, err)
		}
		switch {
		case a.Mode.IsDir():
			walk(t, fs, a.Ino, cp, seed, id)
		case a.Mode.IsRegular():
			got, err := readAll(fs, a.Ino)
			if want, ok := seed[cp]; ok && (err != nil || !bytes.Equal(got, want)) {
				t.Errorf("reader %d: %s reads %d bytes (%v), want the %d seeded", id, cp, len(got), err, len(want))
			} else if err != nil && !gone(err) {
				t.Errorf("reader %d: read %s: %v", id, cp, err)
			}
		}
	}
}

// readAll reads a file in odd-sized pieces, as FUSE requests come.
func readAll(fs volume.FS, ino volume.Ino) ([]byte, error) {
	var out []byte
	buf := make([]byte, 7000)
	for {
		n, err := fs.ReadAt(ino, buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if err == io.EOF || (err == nil && n == 0) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// writer edits its own directory and returns what it holds at the end.
func writer(t *testing.T, fs volume.FS, w volume.Writer, dir volume.Ino, p string, rng *rand.Rand, o Options) map[string][]byte {
	model := map[string][]byte{}
	for i := range o.Ops {
		name := fmt.Sprintf("f%d", rng.Intn(8))
		cur, exists := model[name]
		switch op := rng.Intn(6); {
		case !exists:
			a, err := w.Create(dir, name, 0o644)
			if err != nil {
				t.Errorf("%s: create %s: %v", p, name, err)
				return nil
			}
			data := pattern(rng.Intn(o.MaxFile+1), byte(i))
			if err := writeAll(w, a.Ino, data, 0); err != nil {
				t.Errorf("%s: write %s: %v", p, name, err)
				return nil
			}
			model[name] = data
		case op <= 1: // append
			a, err := fs.Lookup(dir, name)
			if err != nil {
				t.Errorf("%s: lookup %s: %v", p, name, err)
				return nil
			}
			more := pattern(rng.Intn(o.MaxFile/4+1), byte(i))
			if err := writeAll(w, a.Ino, more, int64(len(cur))); err != nil {
				t.Errorf("%s: append %s: %v", p, name, err)
				return nil
			}
			model[name] = append(cur, more...)
		case op == 2: // shrink
			a, err := fs.Lookup(dir, name)
			if err != nil {
				t.Errorf("%s: lookup %s: %v", p, name, err)
				return nil
			}
			n := rng.Intn(len(cur) + 1)
			if err := w.Truncate(a.Ino, int64(n)); err != nil {
				t.Errorf("%s: truncate %s: %v", p, name, err)
				return nil
			}
			model[name] = cur[:n]
		case op == 3: // rename over another name
			to := fmt.Sprintf("f%d", rng.Intn(8))
			if to == name {
				continue
			}
			if err := w.Rename(dir, name, dir, to); err != nil {
				t.Errorf("%s: rename %s to %s: %v", p, name, to, err)
				return nil
			}
			delete(model, name)
			model[to] = cur
		default:
			if err := w.Unlink(dir, name); err != nil {
				t.Errorf("%s: unlink %s: %v", p, name, err)
				return nil
			}
			delete(model, name)
		}
	}
	out := map[string][]byte{}
	for name, b := range model {
		out[path.Join(p, name)] = b
	}
	return out
}

func writeAll(w volume.Writer, ino volume.Ino, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := w.WriteAt(ino, b, off)
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// pattern is n bytes that differ with seed and position.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// Seed makes a tree of files for a tool to put on a volume before Run:
// dirs directories, each with files files of varied sizes up to maxFile.
func Seed(dirs, files, maxFile int) map[string][]byte {
	rng := rand.New(rand.NewSource(99))
	out := map[string][]byte{}
	for d := range dirs {
		for f := range files {
			out[fmt.Sprintf("/d%d/file%d.bin", d, f)] = pattern(rng.Intn(maxFile+1), byte(d*31+f))
		}
	}
	return out
}
