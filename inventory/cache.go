// Package inventory caches what inspect found in each image, keyed by the
// identity of every file the description depends on (the image, its
// parents, offvm's sidecars beside it): an unchanged image costs a few
// stat calls instead of an open. Any change to any of those files (a
// commit by offvm, a write by qemu, a copy over it, a rollback) changes
// its size, mtime, ctime or inode, and the entry is not used.
//
// Entries live in one file per folder of images (a bucket), loaded once
// per process and written back by Flush when something changed: a
// library of 1,000 images in 10 folders is 10 small files, read with 10
// opens. A bucket keeps only entries that are still fresh when it is
// written, so it never holds more than its folder's images; buckets of
// folders that are gone, or untouched for maxIdle, are swept once a day,
// and the whole cache is held under maxBytes (oldest buckets go first).
package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// version changes when what is cached changes shape: old buckets are
// then empty.
const version = 2

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

// entry is one cached description: Files[0] is the image, then its
// sidecars, then its parents.
type entry struct {
	Files []identity      `json:"files"`
	Value json.RawMessage `json:"value"`
}

// fresh reports whether none of the entry's files changed.
func (e *entry) fresh() bool {
	if len(e.Files) == 0 {
		return false
	}
	for _, f := range e.Files {
		now, err := identify(f.Path)
		if err != nil || now != f {
			return false
		}
	}
	return true
}

// Cache is a folder of buckets. It is safe for concurrent use; several
// processes may share one folder (Flush merges under a lock).
type Cache struct {
	dir string
	cwd string // relative image paths are made absolute against it

	mu      sync.Mutex
	buckets map[string]*bucket // by absolute folder of the images
}

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
	cwd, err := os.Getwd()
	if err != nil {
		return nil
	}
	return &Cache{dir: d, cwd: cwd, buckets: map[string]*bucket{}}
}

// abs is path made absolute without asking the OS again for the working
// directory (filepath.Abs does, two stat calls each time).
func (c *Cache) abs(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(c.cwd, path)
}

// bucketOf returns the (loaded) bucket of the folder holding image.
func (c *Cache) bucketOf(abs string) *bucket {
	folder := filepath.Dir(abs)
	c.mu.Lock()
	b := c.buckets[folder]
	if b == nil {
		b = &bucket{folder: folder, file: filepath.Join(c.dir, bucketName(folder))}
		c.buckets[folder] = b
	}
	c.mu.Unlock()
	b.load()
	return b
}

func bucketName(folder string) string {
	h := sha256.Sum256([]byte(folder))
	return hex.EncodeToString(h[:16]) + ".bucket"
}

// Get returns the description cached for image when none of the files it
// depends on changed since.
func (c *Cache) Get(image string) (json.RawMessage, bool) {
	if c == nil {
		return nil, false
	}
	abs := c.abs(image)
	b := c.bucketOf(abs)
	return b.get(filepath.Base(abs), abs)
}

// Put caches value for image, which depends on deps (its parents) too.
// before is the identity of the image and its sidecars from before value
// was computed (Snapshot): when the image changed while it was read, or
// has an interrupted commit beside it, nothing is cached, so an entry is
// never older than its files. The entry reaches the disk at Flush.
func (c *Cache) Put(image string, before []Identity, deps []string, value any) error {
	if c == nil {
		return nil
	}
	now, ok := Snapshot(image, nil)
	if !ok || len(now) != len(before) || !now[1].Gone {
		return nil // gone, or a journal beside it (recovery decides)
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
	abs := c.abs(image)
	c.bucketOf(abs).put(filepath.Base(abs), &entry{Files: files, Value: v})
	return nil
}

// Flush writes every bucket that changed, merged with what other
// processes wrote meanwhile, and sweeps the cache when it is due. A cache
// that cannot be written only costs the next run its speed.
func (c *Cache) Flush() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	var dirty []*bucket
	for _, b := range c.buckets {
		if b.dirty() || b.holdsGone() {
			dirty = append(dirty, b)
		}
	}
	c.mu.Unlock()
	if len(dirty) == 0 {
		return c.touchUsed()
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	for _, b := range dirty {
		errs = append(errs, b.write(c.dir))
	}
	errs = append(errs, c.touchUsed(), c.sweepIfDue())
	return errors.Join(errs...)
}

// Identity is a file's identity at one moment (see Snapshot).
type Identity identity

// Snapshot records the identities of image, its sidecars and deps, to be
// taken before the image is read and handed to Put. ok is false when one
// of them cannot be stat'ed (nothing should be cached then).
func Snapshot(image string, deps []string) (ids []Identity, ok bool) {
	// one filepath.Abs for the image and its sidecars (each asks the OS
	// for the working directory: two stat calls)
	abs, err := filepath.Abs(image)
	if err != nil {
		return nil, false
	}
	paths := []string{abs}
	for _, s := range sidecars {
		paths = append(paths, abs+s)
	}
	for _, p := range deps {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, false
		}
		paths = append(paths, a)
	}
	for i, p := range paths {
		id, err := identify(p)
		if err != nil {
			return nil, false
		}
		if i == 0 && id.Gone {
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
