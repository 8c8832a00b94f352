package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// bucket is the cached entries of one folder of images, by file name.
type bucket struct {
	folder, file string

	once sync.Once
	mu   sync.Mutex
	// entries are what the file held when loaded, then what Put added.
	entries map[string]*entry
	puts    map[string]*entry // added by this process, to be written
	seen    map[string]*entry // found fresh by this process
	stale   bool              // an entry was found stale: a write prunes it
	mtime   time.Time         // of the file when loaded (zero: no file)
	written bool
}

// bucketFile is a bucket on disk. Version and Folder come first so that
// a sweep reads them without the entries (see readFolder).
type bucketFile struct {
	Version int               `json:"version"`
	Folder  string            `json:"folder"`
	Entries map[string]*entry `json:"entries"`
}

// maxBucket bounds what one bucket file may hold (about 100,000 images
// of one folder); a bigger file is ignored and replaced.
const maxBucket = 256 << 20

func (b *bucket) load() {
	b.once.Do(func() {
		b.entries, b.mtime = readBucket(b.file, b.folder)
		b.puts, b.seen = map[string]*entry{}, map[string]*entry{}
	})
}

// readBucket reads a bucket file; a missing, damaged or foreign one is an
// empty bucket (the next write replaces it).
func readBucket(file, folder string) (map[string]*entry, time.Time) {
	empty := map[string]*entry{}
	f, err := os.Open(file)
	if err != nil {
		return empty, time.Time{}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() > maxBucket {
		return empty, time.Time{}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return empty, st.ModTime()
	}
	bf, err := decodeBucket(data)
	if err != nil || bf.Folder != folder {
		return empty, st.ModTime()
	}
	return bf.Entries, st.ModTime()
}

// decodeBucket parses a bucket file, refusing other versions and entries
// without files.
func decodeBucket(data []byte) (*bucketFile, error) {
	var bf bucketFile
	if err := json.Unmarshal(data, &bf); err != nil {
		return nil, fmt.Errorf("inventory bucket: %w", err)
	}
	if bf.Version != version {
		return nil, fmt.Errorf("inventory bucket: version %d, not %d", bf.Version, version)
	}
	for name, e := range bf.Entries {
		if e == nil || len(e.Files) == 0 {
			delete(bf.Entries, name)
		}
	}
	if bf.Entries == nil {
		bf.Entries = map[string]*entry{}
	}
	return &bf, nil
}

// get returns the entry of name when it is fresh and is for abs.
func (b *bucket) get(name, abs string) (json.RawMessage, bool) {
	b.mu.Lock()
	e := b.entries[name]
	b.mu.Unlock()
	if e == nil || e.Files[0].Path != abs {
		return nil, false
	}
	if !e.fresh() {
		b.mu.Lock()
		b.stale = true
		b.mu.Unlock()
		return nil, false
	}
	b.mu.Lock()
	b.seen[name] = e
	b.mu.Unlock()
	return e.Value, true
}

func (b *bucket) put(name string, e *entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries[name], b.puts[name], b.seen[name] = e, e, e
}

// holdsGone reports whether an entry this process did not look at is of
// an image that is gone or changed (one stat each): the bucket is then
// written, which drops it. A run over the whole folder looks at every
// entry and pays nothing here.
func (b *bucket) holdsGone() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, e := range b.entries {
		if b.seen[name] != nil {
			continue
		}
		if now, err := identify(e.Files[0].Path); err != nil || now != e.Files[0] {
			return true
		}
	}
	return false
}

func (b *bucket) dirty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.puts) > 0 || b.stale
}

// write merges the bucket into its file as it is now (another process
// may have written it since it was loaded), keeping only fresh entries:
// ours, those found fresh in this run, and those of others that a stat
// says are still fresh. The caller holds the cache lock. No fsync: a
// bucket lost in a crash costs one cold run, never a wrong answer (each
// entry is checked against its files before use).
func (b *bucket) write(dir string) error {
	disk, _ := readBucket(b.file, b.folder)
	b.mu.Lock()
	for name, e := range b.puts {
		disk[name] = e
	}
	for name, e := range disk {
		if b.seen[name] == e || (b.seen[name] != nil && sameFiles(b.seen[name], e)) {
			continue
		}
		if !e.fresh() {
			delete(disk, name)
		}
	}
	b.entries, b.puts, b.seen, b.stale, b.written = disk, map[string]*entry{}, map[string]*entry{}, false, true
	b.mu.Unlock()
	if len(disk) == 0 {
		if err := os.Remove(b.file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("inventory cache %s: %w", b.file, err)
		}
		return nil
	}
	data, err := json.Marshal(bucketFile{Version: version, Folder: b.folder, Entries: disk})
	if err != nil {
		return err
	}
	return replaceFile(dir, b.file, data)
}

func sameFiles(a, b *entry) bool {
	if len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	return true
}

// replaceFile writes data to a new file in dir and renames it over file,
// so a reader sees the old bucket or the new one, never half of one.
func replaceFile(dir, file string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("inventory cache %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".bucket-*")
	if err != nil {
		return fmt.Errorf("inventory cache %s: %w", dir, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("inventory cache %s: %w", tmp.Name(), errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("inventory cache %s: %w", file, err)
	}
	return nil
}
