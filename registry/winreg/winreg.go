// Package winreg is a Windows guest's registry as offvm sees it: which hive
// files exist on the system volume, which root they mount at (HKLM\SYSTEM,
// HKU\<SID>, ...), loading them lazily, and writing changed ones back into
// the volume. The FUSE view (registryfs), inspection and `offvm reg` all
// go through it.
package winreg

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/volume"
)

// ConfigDir is where Windows keeps its machine hives.
const ConfigDir = "Windows/System32/config"

// maxHive bounds a hive file read into memory (real SOFTWARE hives reach a
// few hundred MiB; a hostile image must not make us read more).
const maxHive = 2 << 30

// Hive is one hive file and the registry path it is mounted at.
type Hive struct {
	Root string // "HKLM/SYSTEM", "HKU/S-1-5-21-...", "HKU/.DEFAULT"
	File string // path on the system volume

	mu      sync.Mutex
	loaded  bool
	h       *hive.Hive
	err     error
	ino     volume.Ino
	touched bool // the hive file was written through the file system view
}

// Registry is a Windows guest's set of hives.
type Registry struct {
	FS        volume.FS
	w         volume.Writer // nil when the volume is read-only
	readOnly  string
	noSecrets bool

	mu       sync.Mutex
	machine  []*Hive
	users    []*Hive
	aliases  map[string]string // HKU/<user name> → <SID>
	profiles []Profile
	usersErr error
	usersOK  bool
}

// Profile is one entry of ProfileList.
type Profile struct {
	SID  string
	Name string // the last element of the profile path
	Path string // as Windows wrote it: C:\Users\alice
}

// Open finds the registry of the Windows installation on f, or returns
// ErrNotWindows. w is nil when writes are refused (readOnly says why).
func Open(f volume.FS, w volume.Writer, readOnly string, noSecrets bool) (*Registry, error) {
	a, err := volume.Resolve(f, ConfigDir)
	if err != nil || !a.Mode.IsDir() {
		return nil, ErrNotWindows
	}
	ents, err := f.ReadDir(a.Ino)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigDir, err)
	}
	r := &Registry{FS: f, w: w, readOnly: readOnly, noSecrets: noSecrets}
	for _, name := range []string{"SYSTEM", "SOFTWARE", "SAM", "SECURITY", "COMPONENTS", "DEFAULT"} {
		if noSecrets && (name == "SAM" || name == "SECURITY") {
			continue
		}
		for _, e := range ents {
			if strings.EqualFold(e.Name, name) && e.Mode.IsRegular() {
				root := "HKLM/" + name
				if name == "DEFAULT" {
					root = "HKU/.DEFAULT"
				}
				r.machine = append(r.machine, &Hive{Root: root, File: path.Join(ConfigDir, e.Name), ino: e.Ino})
			}
		}
	}
	if len(r.machine) == 0 {
		return nil, ErrNotWindows
	}
	return r, nil
}

// ErrNotWindows means the volume holds no Windows registry.
var ErrNotWindows = errors.New("no Windows registry (Windows\\System32\\config) in this image")

// Writable reports whether hives may be changed, and if not, why.
func (r *Registry) Writable() (bool, string) { return r.w != nil, r.readOnly }

// Machine returns the machine hives (HKLM and HKU/.DEFAULT).
func (r *Registry) Machine() []*Hive { return r.machine }

// Hive returns the hive mounted at root ("HKLM/SOFTWARE"), or nil.
func (r *Registry) Hive(root string) *Hive {
	for _, h := range r.All() {
		if strings.EqualFold(h.Root, root) {
			return h
		}
	}
	return nil
}

// All returns every hive: machine hives and, once ProfileList has been
// read, the users' hives.
func (r *Registry) All() []*Hive {
	users, _ := r.Users()
	return append(append([]*Hive{}, r.machine...), users...)
}

// Load parses the hive (replaying its logs) on first use.
func (h *Hive) Load(f volume.FS) (*hive.Hive, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.loaded {
		return h.h, h.err
	}
	h.loaded = true
	h.h, h.err = loadHive(f, h.File)
	return h.h, h.err
}

// Loaded returns the parsed hive if it has been loaded.
func (h *Hive) Loaded() *hive.Hive {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h
}

// loadHive opens a hive through the volume. A clean hive is read only
// where its cells are used (inspection needs a few dozen keys of a
// 200 MiB SOFTWARE hive); a dirty one is read whole and replayed. The
// logs are small and read whole.
func loadHive(f volume.FS, file string) (*hive.Hive, error) {
	a, err := volume.Resolve(f, file)
	if err != nil {
		return nil, fmt.Errorf("hive %s: %w", file, err)
	}
	if !a.Mode.IsRegular() {
		return nil, fmt.Errorf("hive %s: not a regular file: %w", file, syscall.EISDIR)
	}
	if a.Size > maxHive {
		return nil, fmt.Errorf("hive %s: %d bytes, more than the %d this reader takes: %w", file, a.Size, maxHive, syscall.EFBIG)
	}
	var logs []hive.Log
	for _, lp := range logPaths(f, file) {
		b, err := volume.ReadFile(f, lp, maxHive)
		if err != nil {
			return nil, fmt.Errorf("hive log %s: %w", lp, err)
		}
		logs = append(logs, hive.Log{Name: path.Base(lp), Data: b})
	}
	h, err := hive.OpenReaderAt(withHead(inoReader{f, a.Ino}, a.Size), a.Size, logs)
	if err != nil {
		return nil, fmt.Errorf("hive %s: %w", file, err)
	}
	return h, nil
}

// inoReader reads one file of a volume as an io.ReaderAt.
type inoReader struct {
	f   volume.FS
	ino volume.Ino
}

func (r inoReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(r.ino, p, off) }

// hiveHeadBytes is how much of a hive is read at once when it is opened:
// its base block, root key and the keys Windows keeps near them (the
// first three 64 KiB windows of the corpus' SYSTEM hold 12 of the 17 pages
// a listing reads from it). One request instead of a read, and a wait,
// for each of those windows as a lookup reaches it.
const hiveHeadBytes = 192 << 10

// headReader serves reads within the first bytes of a hive file from
// one read made when the hive is opened, and the others from the file.
// A hive's model never reads bytes it changed back from its file (it
// copies them first) and keeps none of the file's after a save whole, so
// the head read once stays the bytes it would read.
type headReader struct {
	r    io.ReaderAt
	head []byte
}

// withHead reads the head of r (size bytes); a failed read leaves each
// read to r, to fail or not as before.
func withHead(r io.ReaderAt, size int64) io.ReaderAt {
	b := make([]byte, min(size, hiveHeadBytes))
	if n, err := r.ReadAt(b, 0); n < len(b) && err != nil {
		return r
	}
	return headReader{r, b}
}

func (h headReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= 0 && off+int64(len(p)) <= int64(len(h.head)) {
		return copy(p, h.head[off:]), nil
	}
	return h.r.ReadAt(p, off)
}

// logPaths finds file.LOG1, .LOG2 and .LOG beside a hive, in that order,
// case-insensitively.
func logPaths(f volume.FS, file string) []string {
	dir, base := path.Split(file)
	a, err := volume.Resolve(f, dir)
	if err != nil {
		return nil
	}
	ents, err := f.ReadDir(a.Ino)
	if err != nil {
		return nil
	}
	var out []string
	for _, suffix := range []string{".LOG1", ".LOG2", ".LOG"} {
		for _, e := range ents {
			if strings.EqualFold(e.Name, base+suffix) && e.Mode.IsRegular() {
				out = append(out, path.Join(dir, e.Name))
				break
			}
		}
	}
	return out
}

// sortHives keeps listings stable.
func sortHives(hs []*Hive) {
	sort.Slice(hs, func(i, j int) bool { return hs[i].Root < hs[j].Root })
}

var errBusy = syscall.EBUSY

// Problems lists, for info.json, each machine and user hive that is shown
// read-only or cannot be read at all, with the reason (a dirty hive whose
// logs cannot be used names each log and why). A hive not yet loaded
// whose base block says it is clean costs one 4 KiB read; a dirty one is
// loaded (replayed) to learn whether its logs can be used. The hives are
// checked at once: on a cold image each check waits on storage, and the
// reads of the base blocks are in flight together rather than one after
// another. The list is in the order of All.
func (r *Registry) Problems() []string {
	hs := r.All()
	found := make([]string, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[i] = r.problem(h)
		}()
	}
	wg.Wait()
	var out []string
	for _, p := range found {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// problem is why h is shown read-only or cannot be read, "" when it is
// neither.
func (r *Registry) problem(h *Hive) string {
	if h.Loaded() == nil && r.cleanOnDisk(h) {
		return "" // a clean hive needs no log, so none can be unusable
	}
	hv, err := h.Load(r.FS)
	switch {
	case err != nil:
		return fmt.Sprintf("registry %s: %v", h.Root, err)
	case hv.ReadOnly() != nil:
		return fmt.Sprintf("registry %s: %s: %v", h.Root, h.File, hv.ReadOnly())
	}
	return ""
}

// cleanOnDisk reads h's base block and says whether it is valid and clean.
func (r *Registry) cleanOnDisk(h *Hive) bool {
	a, err := volume.Resolve(r.FS, h.File)
	if err != nil {
		return false
	}
	head := make([]byte, 4096)
	if n, err := r.FS.ReadAt(a.Ino, head, 0); n < len(head) && err != nil {
		return false
	}
	return hive.Clean(head)
}
