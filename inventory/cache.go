// Package inventory caches what inspect found in each image, keyed by the
// identity of every file the description depends on (the image, its
// parents, offvm's sidecars beside it): an unchanged image costs a few
// stat calls instead of an open. Any change to any of those files (a
// commit by offvm, a write by qemu, a copy over it, a rollback) changes
// its size, mtime, ctime or inode, and the entry is not used.
package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// version changes when what is cached changes shape: old entries are
// then misses.
const version = 1

// sidecars are offvm's files beside an image whose presence changes what
// opening it does (an interrupted commit is recovered or refused).
var sidecars = []string{".offvm-journal", ".offvm-undo"}

// identity is what says a file has not changed. ctime cannot be set by
// any user, so a write that restores the mtime is still seen.
type identity struct {
	Path  string `json:"path"`
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
	Gone  bool   `json:"gone,omitempty"` // a sidecar that did not exist
}

func identify(path string) (identity, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return identity{Path: path, Gone: true}, nil
		}
		return identity{}, err
	}
	return identity{Path: path, Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}

// entry is one cached description.
type entry struct {
	Version int             `json:"version"`
	Files   []identity      `json:"files"`
	Value   json.RawMessage `json:"value"`
}

// Cache is a folder of entries, one file per image.
type Cache struct{ dir string }

// Dir is where the cache lives: $OFFVM_CACHE_DIR, else
// $XDG_CACHE_HOME/offvm/inventory (~/.cache/offvm/inventory).
func Dir() (string, error) {
	if d := os.Getenv("OFFVM_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "offvm", "inventory"), nil
}

// Open returns the cache, or nil (every lookup a miss) when it is turned
// off ($OFFVM_NO_CACHE) or has nowhere to live.
func Open() *Cache {
	if os.Getenv("OFFVM_NO_CACHE") != "" {
		return nil
	}
	d, err := Dir()
	if err != nil {
		return nil
	}
	return &Cache{dir: d}
}

func (c *Cache) file(image string) string {
	abs, err := filepath.Abs(image)
	if err != nil {
		abs = image
	}
	h := sha256.Sum256([]byte(abs))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16])+".json")
}

// watched are the files an image's description depends on: the image,
// its sidecars, and deps (its parents).
func watched(image string, deps []string) []string {
	out := []string{image}
	for _, s := range sidecars {
		out = append(out, image+s)
	}
	return append(out, deps...)
}

// Get returns the description cached for image when none of the files it
// depends on changed since.
func (c *Cache) Get(image string) (json.RawMessage, bool) {
	if c == nil {
		return nil, false
	}
	b, err := os.ReadFile(c.file(image))
	if err != nil {
		return nil, false
	}
	var e entry
	if json.Unmarshal(b, &e) != nil || e.Version != version || len(e.Files) == 0 {
		return nil, false
	}
	abs, _ := filepath.Abs(image)
	if e.Files[0].Path != abs {
		return nil, false // a hash collision, or a moved cache
	}
	for _, f := range e.Files {
		now, err := identify(f.Path)
		if err != nil || now != f {
			return nil, false
		}
	}
	return e.Value, true
}

// Put caches value for image, which depends on deps (its parents) too.
// before is the identity of the image and its sidecars from before value
// was computed (Snapshot): when the image changed while it was read,
// nothing is cached, so an entry is never older than its files.
func (c *Cache) Put(image string, before []Identity, deps []string, value any) error {
	if c == nil {
		return nil
	}
	now, ok := Snapshot(image, nil)
	if !ok || len(now) != len(before) {
		return nil
	}
	for i := range now {
		if now[i] != before[i] {
			return nil
		}
	}
	if len(deps) > 0 {
		d, ok := Snapshot(image, deps)
		if !ok {
			return nil
		}
		before = d
	}
	v, err := json.Marshal(value)
	if err != nil {
		return err
	}
	files := make([]identity, len(before))
	for i, b := range before {
		files[i] = identity(b)
	}
	b, err := json.Marshal(entry{Version: version, Files: files, Value: v})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("inventory cache %s: %w", c.dir, err)
	}
	tmp, err := os.CreateTemp(c.dir, ".entry-*")
	if err != nil {
		return fmt.Errorf("inventory cache %s: %w", c.dir, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("inventory cache %s: %w", tmp.Name(), errors.Join(werr, cerr))
	}
	return os.Rename(tmp.Name(), c.file(image))
}

// Identity is a file's identity at one moment (see Snapshot).
type Identity identity

// Snapshot records the identities of image, its sidecars and deps, to be
// taken before the image is read and handed to Put. ok is false when one
// of them cannot be stat'ed (nothing should be cached then).
func Snapshot(image string, deps []string) (ids []Identity, ok bool) {
	for _, p := range watched(image, deps) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, false
		}
		id, err := identify(abs)
		if err != nil {
			return nil, false
		}
		if p == image && id.Gone {
			return nil, false
		}
		ids = append(ids, Identity(id))
	}
	return ids, true
}

// Pending reports whether image has an interrupted commit beside it
// (its description then must not come from, or go into, the cache).
func Pending(image string) bool {
	_, err := os.Stat(image + ".offvm-journal")
	return err == nil
}
