package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The cache's bounds. A bucket in use is touched once a day, so maxIdle
// only removes buckets no run has read for that long; maxBytes bounds the
// whole folder, dropping the least recently used buckets first.
var (
	maxIdle    = 30 * 24 * time.Hour
	maxBytes   = int64(256 << 20)
	sweepEvery = 24 * time.Hour
	now        = time.Now
)

const stampName = ".swept"

// lock takes the cache folder's lock (flock, released at exit if the
// process dies), so that merges of one bucket by two processes serialize.
func (c *Cache) lock() (func(), error) {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("inventory cache %s: %w", c.dir, err)
	}
	f, err := os.OpenFile(filepath.Join(c.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("inventory cache %s: %w", c.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("inventory cache %s: lock: %w", c.dir, err)
	}
	return func() { f.Close() }, nil
}

// touchUsed marks buckets this process read and did not write as used
// (their mtime, at most once a day), so the idle sweep keeps them.
func (c *Cache) touchUsed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, b := range c.buckets {
		b.mu.Lock()
		used := len(b.seen) > 0 && !b.written && !b.mtime.IsZero() && now().Sub(b.mtime) > sweepEvery
		b.mu.Unlock()
		if used {
			t := now()
			if err := os.Chtimes(b.file, t, t); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("inventory cache %s: %w", b.file, err))
			}
		}
	}
	return errors.Join(errs...)
}

// sweepIfDue sweeps at most once per sweepEvery (the stamp file's mtime
// says when the last one ran). The caller holds the cache lock.
func (c *Cache) sweepIfDue() error {
	stamp := filepath.Join(c.dir, stampName)
	if st, err := os.Stat(stamp); err == nil && now().Sub(st.ModTime()) < sweepEvery {
		return nil
	}
	if err := os.WriteFile(stamp, nil, 0o600); err != nil {
		return fmt.Errorf("inventory cache %s: %w", stamp, err)
	}
	t := now()
	os.Chtimes(stamp, t, t)
	return c.sweep()
}

// oldEntry is a file of the version 1 cache (one per image).
var oldEntry = regexp.MustCompile(`^[0-9a-f]{32}\.json$`)

// sweep removes buckets whose folder is gone or that no run used for
// maxIdle, version 1 entries, temporary files left by a crash, and then
// the least recently used buckets until the cache is under maxBytes.
func (c *Cache) sweep() error {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("inventory cache %s: %w", c.dir, err)
	}
	type kept struct {
		path  string
		mtime time.Time
		size  int64
	}
	var keep []kept
	var total int64
	for _, de := range des {
		p := filepath.Join(c.dir, de.Name())
		st, err := de.Info()
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		age := now().Sub(st.ModTime())
		switch {
		case oldEntry.MatchString(de.Name()):
			os.Remove(p)
		case strings.HasPrefix(de.Name(), ".bucket-") && age > time.Hour:
			os.Remove(p)
		case strings.HasSuffix(de.Name(), ".bucket"):
			if age > maxIdle || folderGone(p) {
				os.Remove(p)
				continue
			}
			keep = append(keep, kept{p, st.ModTime(), st.Size()})
			total += st.Size()
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].mtime.Before(keep[j].mtime) })
	for _, k := range keep {
		if total <= maxBytes {
			break
		}
		os.Remove(k.path)
		total -= k.size
	}
	return nil
}

// folderGone reads a bucket's folder (the head of the file, not its
// entries) and tells whether that folder no longer exists. A bucket that
// cannot be read is gone too: it would never be used.
func folderGone(bucketPath string) bool {
	folder, err := readFolder(bucketPath)
	if err != nil {
		return true
	}
	_, err = os.Stat(folder)
	return errors.Is(err, fs.ErrNotExist)
}

// readFolder reads "version" and "folder", which bucketFile writes first.
func readFolder(bucketPath string) (string, error) {
	f, err := os.Open(bucketPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var head struct {
		Version int    `json:"version"`
		Folder  string `json:"folder"`
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("%s: not a bucket", bucketPath)
	}
	for i := 0; i < 2; i++ {
		k, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("%s: %w", bucketPath, err)
		}
		switch k {
		case "version":
			err = dec.Decode(&head.Version)
		case "folder":
			err = dec.Decode(&head.Folder)
		default:
			return "", fmt.Errorf("%s: unexpected field %v", bucketPath, k)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", bucketPath, err)
		}
	}
	if head.Version != version || head.Folder == "" {
		return "", fmt.Errorf("%s: version %d bucket", bucketPath, head.Version)
	}
	return head.Folder, nil
}
