package txn

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// pageSize is the staging granularity for host files.
const pageSize = 4096

// stager is the vdisk.Options.OpenFile a format gets during Commit: every
// host file it opens is read from the real file, every write it makes is
// kept in pages of an anonymous spill file, and nothing reaches the real
// files. Opening the same path twice gives two handles on one staged state.
type stager struct {
	mu    sync.Mutex
	spill *os.File
	slots int64 // pages allocated in spill
	files map[string]*staged
	order []*staged // in first-open order, for a stable journal
}

func newStager(spillDir string) (*stager, error) {
	f, err := tempFile(spillDir)
	if err != nil {
		// beside the image may be read-only to us; the temp dir may not
		f, err = tempFile("")
		if err != nil {
			return nil, err
		}
	}
	return &stager{spill: f, files: map[string]*staged{}}, nil
}

// close releases the spill file and the read-only real files.
func (s *stager) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.order {
		st.real.Close()
	}
	s.order, s.files = nil, nil
	s.spill.Close()
}

// open is the vdisk.Options.OpenFile that stages writes.
func (s *stager) open(path string, writable bool) (vdisk.File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("txn: %s: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.files[abs]
	if !ok {
		if st, err = s.newStaged(abs); err != nil {
			return nil, err
		}
		s.files[abs] = st
		s.order = append(s.order, st)
	}
	return &stagedFile{st: st, name: path, writable: writable}, nil
}

func (s *stager) newStaged(abs string) (*staged, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("txn: %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("txn: %s is not a regular file: %w", abs, vdisk.ErrUnsupported)
	}
	n := fi.Size()
	return &staged{s: s, path: abs, real: f, realSize: n, realMtime: fi.ModTime().UnixNano(), size: n, visible: n, pages: map[int64]int64{}}, nil
}

// allocPages returns the spill offset of n new pages, one after another.
func (s *stager) allocPages(n int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots += n
	return (s.slots - n) * pageSize
}

// staged is one host file as the format sees it during Commit.
type staged struct {
	s        *stager
	path     string
	real     *os.File // read-only
	realSize int64    // length of the real file
	// realMtime is the real file's mtime, which undoing the commit
	// restores: a commit undone leaves no trace, and the previous commit's
	// undo record (which checks the mtime) stays usable
	realMtime int64
	mu        sync.RWMutex
	size      int64           // current length as the format sees it
	visible   int64           // real bytes at or past this were cut by Truncate
	pages     map[int64]int64 // page index → spill offset
}

// changed reports whether the format changed the file's length or wrote to it.
func (st *staged) changed() bool {
	return len(st.pages) > 0 || st.size != st.realSize || st.visible != st.realSize
}

// sortedPages lists the staged page indices in order.
func (st *staged) sortedPages() []int64 {
	idx := make([]int64, 0, len(st.pages))
	for i := range st.pages {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return idx
}

// readNew reads the file as the format left it: staged pages, real bytes
// below visible, zeros elsewhere. p must lie within size. Pages that lie
// one after another in the spill too are read in one call.
func (st *staged) readNew(p []byte, off int64) error {
	for len(p) > 0 {
		idx, in := off/pageSize, off%pageSize
		n := int(min(int64(len(p)), pageSize-in))
		slot, ok := st.pages[idx]
		if !ok {
			if err := st.readOld(p[:n], off, st.visible); err != nil {
				return err
			}
		} else {
			for k := int64(1); n < len(p) && st.slotIs(idx+k, slot+k*pageSize); k++ {
				n = min(len(p), n+pageSize)
			}
			if _, err := st.s.spill.ReadAt(p[:n], slot+in); err != nil {
				return fmt.Errorf("txn: staging file read for %s: %w", st.path, err)
			}
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

func (st *staged) hasPage(idx int64) bool {
	_, ok := st.pages[idx]
	return ok
}

// slotIs reports whether page idx is staged at spill offset slot.
func (st *staged) slotIs(idx, slot int64) bool {
	s, ok := st.pages[idx]
	return ok && s == slot
}

// readOld reads the real file, with zeros at and past limit (and past the
// real file's end, should it have shrunk under us).
func (st *staged) readOld(p []byte, off, limit int64) error {
	clear(p)
	if off >= limit {
		return nil
	}
	q := p[:min(int64(len(p)), limit-off)]
	if _, err := st.real.ReadAt(q, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("txn: read %s at %d: %w", st.path, off, err)
	}
	return nil
}

// writeFull stages the whole pages of p, which starts at page idx: runs
// of pages not staged yet get slots one after another in the spill, so
// that a run is one write (and one read when it is journaled).
func (st *staged) writeFull(p []byte, idx int64) error {
	for len(p) >= pageSize {
		slot, ok := st.pages[idx]
		n, pages := int64(1), int64(len(p)/pageSize)
		// the run: pages all unstaged, or all staged one after another
		for n < pages && (ok && st.slotIs(idx+n, slot+n*pageSize) || !ok && !st.hasPage(idx+n)) {
			n++
		}
		if !ok {
			slot = st.s.allocPages(n)
			for k := range n {
				st.pages[idx+k] = slot + k*pageSize
			}
		}
		if _, err := st.s.spill.WriteAt(p[:n*pageSize], slot); err != nil {
			return fmt.Errorf("txn: staging file write for %s: %w", st.path, err)
		}
		p, idx = p[n*pageSize:], idx+n
	}
	return nil
}

// writePage copies p into page idx at in, staging the page first.
func (st *staged) writePage(p []byte, idx, in int64) error {
	slot, ok := st.pages[idx]
	if !ok {
		slot = st.s.allocPages(1)
		if in != 0 || len(p) != pageSize {
			buf := make([]byte, pageSize)
			if err := st.readOld(buf, idx*pageSize, st.visible); err != nil {
				return err
			}
			copy(buf[in:], p)
			p, in = buf, 0
		}
		st.pages[idx] = slot
	}
	if _, err := st.s.spill.WriteAt(p, slot+in); err != nil {
		return fmt.Errorf("txn: staging file write for %s: %w", st.path, err)
	}
	return nil
}

// truncate sets the length; real bytes past a shrink stay cut even if the
// file grows again, and a staged page across the new end loses its tail.
func (st *staged) truncate(n int64) error {
	if n < st.size {
		for idx := range st.pages {
			if idx*pageSize >= n {
				delete(st.pages, idx)
			}
		}
		if in := n % pageSize; in != 0 {
			if slot, ok := st.pages[n/pageSize]; ok {
				zero := make([]byte, pageSize-in)
				if _, err := st.s.spill.WriteAt(zero, slot+in); err != nil {
					return fmt.Errorf("txn: staging file write for %s: %w", st.path, err)
				}
			}
		}
		st.visible = min(st.visible, n)
	}
	st.size = n
	return nil
}

// stagedFile is one handle on a staged host file.
type stagedFile struct {
	st       *staged
	name     string
	writable bool
}

func (f *stagedFile) Name() string { return f.name }
func (f *stagedFile) Close() error { return nil }

func (f *stagedFile) Size() (int64, error) {
	f.st.mu.RLock()
	defer f.st.mu.RUnlock()
	return f.st.size, nil
}

func (f *stagedFile) ReadAt(p []byte, off int64) (int, error) {
	st := f.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	if off < 0 {
		return 0, fmt.Errorf("txn: read %s at %d: negative offset", f.name, off)
	}
	if off >= st.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), st.size-off))
	if err := st.readNew(p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *stagedFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.writable {
		return 0, fmt.Errorf("txn: write to %s opened read-only: %w", f.name, vdisk.ErrReadOnly)
	}
	if off < 0 || off+int64(len(p)) < off {
		return 0, fmt.Errorf("txn: write to %s at %d: bad offset", f.name, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	for done := 0; done < len(p); {
		o := off + int64(done)
		idx, in := o/pageSize, o%pageSize
		if full := (len(p) - done) / pageSize * pageSize; in == 0 && full > 0 {
			if err := st.writeFull(p[done:done+full], idx); err != nil {
				return done, err
			}
			done += full
			continue
		}
		n := int(min(int64(len(p)-done), pageSize-in))
		if err := st.writePage(p[done:done+n], idx, in); err != nil {
			return done, err
		}
		done += n
	}
	st.size = max(st.size, off+int64(len(p)))
	return len(p), nil
}

func (f *stagedFile) Truncate(n int64) error {
	if !f.writable {
		return fmt.Errorf("txn: truncate %s opened read-only: %w", f.name, vdisk.ErrReadOnly)
	}
	if n < 0 {
		return fmt.Errorf("txn: truncate %s to %d: negative length", f.name, n)
	}
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	return f.st.truncate(n)
}
