package txn

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// maxViewBytes bounds the old bytes a history view holds in memory.
const maxViewBytes = 512 << 20

const viewPage = 4096

// View is the image as it was at one point of its history, computed
// from the files as they are and the undo records of the commits since,
// without writing anything: what `offvm diff IMAGE COMMIT` opens twice
// (before and after the commit) to compare the guests.
type View struct {
	dir   string
	files map[string]*viewFile // by path relative to the image's directory
}

// viewFile is one host file with undo records applied in memory: pages
// written by them, a length, and the length below which the real file's
// bytes still show through (above it a truncate dropped them).
type viewFile struct {
	mu        sync.Mutex
	base      *os.File
	size      int64
	showBelow int64
	pages     map[int64][]byte
}

// HistoryView is image as it was just after commit id (before=false) or
// just before it (before=true). The commit and every later one that is
// not rolled back must be undoable.
func HistoryView(image string, id int, before bool) (*View, error) {
	chain, err := chainTo(image, id)
	if err != nil {
		return nil, err
	}
	if !before {
		chain = chain[:len(chain)-1]
	}
	v := &View{dir: filepath.Dir(image), files: map[string]*viewFile{}}
	var held int64
	for _, c := range chain {
		if err := v.undo(c.record, &held); err != nil {
			v.Close()
			return nil, fmt.Errorf("txn: history of %s: commit %d: %w", image, c.ID, err)
		}
	}
	return v, nil
}

// undo applies one record's old bytes and lengths, as Rollback would.
func (v *View) undo(rpath string, held *int64) error {
	j, err := verifyJournal(rpath)
	if err != nil {
		return err
	}
	vfs := make([]*viewFile, len(j.Files))
	for i, jf := range j.Files {
		if vfs[i], err = v.file(jf.Path); err != nil {
			return err
		}
	}
	f, err := os.Open(rpath)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err = readJournal(f, fi.Size(), func(r region) error {
		if *held += int64(len(r.Old)); *held > maxViewBytes {
			return fmt.Errorf("the commits since hold more than %d MiB of old bytes, too many to view", maxViewBytes>>20)
		}
		return vfs[r.File].write(r.Old, r.Off)
	}); err != nil {
		return err
	}
	for i, jf := range j.Files {
		vfs[i].truncate(jf.OldLen)
	}
	return nil
}

func (v *View) file(rel string) (*viewFile, error) {
	if vf := v.files[rel]; vf != nil {
		return vf, nil
	}
	f, err := os.Open(filepath.Join(v.dir, rel))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	vf := &viewFile{base: f, size: fi.Size(), showBelow: fi.Size(), pages: map[int64][]byte{}}
	v.files[rel] = vf
	return vf, nil
}

// page returns the page at index n, reading it through from the file.
func (vf *viewFile) page(n int64) ([]byte, error) {
	if p := vf.pages[n]; p != nil {
		return p, nil
	}
	p := make([]byte, viewPage)
	start := n * viewPage
	if start < vf.showBelow {
		m, err := vf.base.ReadAt(p[:min(viewPage, vf.showBelow-start)], start)
		if err != nil && err != io.EOF {
			return nil, err
		}
		clear(p[m:])
	}
	vf.pages[n] = p
	return p, nil
}

func (vf *viewFile) write(data []byte, off int64) error {
	for len(data) > 0 {
		p, err := vf.page(off / viewPage)
		if err != nil {
			return err
		}
		n := copy(p[off%viewPage:], data)
		data, off = data[n:], off+int64(n)
		vf.size = max(vf.size, off)
	}
	return nil
}

// truncate sets the length; bytes beyond it read as zeros if it grows
// again, as a real file's would.
func (vf *viewFile) truncate(n int64) {
	if n < vf.size {
		for k := range vf.pages {
			if k*viewPage >= n {
				delete(vf.pages, k)
			}
		}
		if p := vf.pages[n/viewPage]; p != nil {
			clear(p[n%viewPage:])
		}
		vf.showBelow = min(vf.showBelow, n)
	}
	vf.size = n
}

func (vf *viewFile) readAt(p []byte, off int64) (int, error) {
	vf.mu.Lock()
	defer vf.mu.Unlock()
	if off >= vf.size {
		return 0, io.EOF
	}
	want := len(p)
	p = p[:min(int64(len(p)), vf.size-off)]
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		n := min(len(p)-done, int(viewPage-pos%viewPage))
		if pg := vf.pages[pos/viewPage]; pg != nil {
			copy(p[done:done+n], pg[pos%viewPage:])
		} else if pos >= vf.showBelow {
			clear(p[done : done+n])
		} else {
			m := min(int64(n), vf.showBelow-pos)
			k, err := vf.base.ReadAt(p[done:done+int(m)], pos)
			if err != nil && err != io.EOF {
				return done + k, err
			}
			clear(p[done+k : done+n])
		}
		done += n
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// OpenFile opens a host file of the image as the view shows it,
// read-only (vdisk.Options.OpenFile, mount.Options.OpenFile).
func (v *View) OpenFile(path string, writable bool) (vdisk.File, error) {
	if writable {
		return nil, fmt.Errorf("txn: %s: a history view is read-only: %w", path, vdisk.ErrReadOnly)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dirAbs, _ := filepath.Abs(v.dir)
	if rel, err := filepath.Rel(dirAbs, abs); err == nil {
		if vf := v.files[rel]; vf != nil {
			return &viewHandle{vf: vf, name: path}, nil
		}
	}
	return vdisk.OpenOSFile(path, false)
}

// Close closes the files the view holds.
func (v *View) Close() error {
	for _, vf := range v.files {
		vf.base.Close()
	}
	return nil
}

// viewHandle is one open of a view file; closing it leaves the view.
type viewHandle struct {
	vf   *viewFile
	name string
}

func (h *viewHandle) ReadAt(p []byte, off int64) (int, error) { return h.vf.readAt(p, off) }
func (h *viewHandle) WriteAt([]byte, int64) (int, error)      { return 0, vdisk.ErrReadOnly }
func (h *viewHandle) Truncate(int64) error                    { return vdisk.ErrReadOnly }
func (h *viewHandle) Name() string                            { return h.name }
func (h *viewHandle) Close() error                            { return nil }
func (h *viewHandle) Size() (int64, error) {
	h.vf.mu.Lock()
	defer h.vf.mu.Unlock()
	return h.vf.size, nil
}
