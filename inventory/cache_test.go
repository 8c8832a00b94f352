package inventory

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

type fact struct{ N int }

func newCache(t *testing.T) (*Cache, string) {
	t.Setenv("OFFVM_CACHE_DIR", t.TempDir())
	t.Setenv("OFFVM_NO_CACHE", "")
	c := Open()
	if c == nil {
		t.Fatal("no cache")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "a.img")
	if err := os.WriteFile(img, []byte("image one"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c, img
}

func put(t *testing.T, c *Cache, img string, deps []string, n int) {
	t.Helper()
	before, ok := Snapshot(img, nil)
	if !ok {
		t.Fatal("snapshot failed")
	}
	if err := c.Put(img, before, deps, fact{n}); err != nil {
		t.Fatal(err)
	}
}

func get(c *Cache, img string) (int, bool) {
	b, ok := c.Get(img)
	if !ok {
		return 0, false
	}
	var f fact
	if json.Unmarshal(b, &f) != nil {
		return 0, false
	}
	return f.N, true
}

// TestCacheNeverStale: every kind of change to a file the entry depends on
// makes it a miss, even one that keeps size and mtime.
func TestCacheNeverStale(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, img, parent string)
	}{
		{"same size, mtime put back", func(t *testing.T, img, _ string) {
			st, _ := os.Stat(img)
			os.WriteFile(img, []byte("image two"), 0o644)
			os.Chtimes(img, st.ModTime(), st.ModTime())
		}},
		{"replaced by rename", func(t *testing.T, img, _ string) {
			os.WriteFile(img+".new", []byte("image one"), 0o644)
			os.Rename(img+".new", img)
		}},
		{"journal appears", func(t *testing.T, img, _ string) { os.WriteFile(img+".offvm-journal", nil, 0o644) }},
		{"undo record appears", func(t *testing.T, img, _ string) { os.WriteFile(img+".offvm-undo", nil, 0o644) }},
		{"parent written", func(t *testing.T, _, parent string) { os.WriteFile(parent, []byte("other parent"), 0o644) }},
		{"chmod", func(t *testing.T, img, _ string) { os.Chmod(img, 0o600) }},
		{"removed", func(t *testing.T, img, _ string) { os.Remove(img) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, img := newCache(t)
			parent := filepath.Join(filepath.Dir(img), "base.img")
			os.WriteFile(parent, []byte("parent"), 0o644)
			put(t, c, img, []string{parent}, 1)
			if n, ok := get(c, img); !ok || n != 1 {
				t.Fatalf("fresh entry: %d, %v", n, ok)
			}
			time.Sleep(2 * time.Millisecond)
			tc.change(t, img, parent)
			if n, ok := get(c, img); ok {
				t.Errorf("after %s the cache still says %d", tc.name, n)
			}
		})
	}
}

// TestCachePutRefusesChangedImage: an image that changed while it was
// described is not cached.
func TestCachePutRefusesChangedImage(t *testing.T) {
	c, img := newCache(t)
	before, _ := Snapshot(img, nil)
	time.Sleep(2 * time.Millisecond)
	os.WriteFile(img, []byte("changed meanwhile"), 0o644)
	c.Put(img, before, nil, fact{7})
	if _, ok := get(c, img); ok {
		t.Errorf("a description older than its image was cached")
	}
}

func TestCacheOff(t *testing.T) {
	t.Setenv("OFFVM_NO_CACHE", "1")
	if Open() != nil {
		t.Errorf("OFFVM_NO_CACHE did not turn the cache off")
	}
	var c *Cache
	if _, ok := c.Get("x"); ok || c.Put("x", nil, nil, 1) != nil {
		t.Errorf("a nil cache must miss and accept puts")
	}
}

// reopen is a new process's view of the same cache folder.
func reopen(t *testing.T, c *Cache) *Cache {
	t.Helper()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	n := Open()
	if n == nil || n.dir != c.dir {
		t.Fatalf("reopened cache at %v, want %s", n, c.dir)
	}
	return n
}

// bucketNames lists the images a folder's bucket file holds on disk.
func bucketNames(t *testing.T, c *Cache, folder string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, bucketName(folder)))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	bf, err := decodeBucket(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range bf.Entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func writeImage(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCachePersists: entries reach the disk at Flush, one bucket file per
// folder, and a later process finds them, but never one whose image changed.
func TestCachePersists(t *testing.T) {
	c, img := newCache(t)
	other := filepath.Join(filepath.Dir(img), "b.img")
	writeImage(t, other, "image b")
	put(t, c, img, nil, 1)
	put(t, c, other, nil, 2)
	c = reopen(t, c)
	if n, ok := get(c, img); !ok || n != 1 {
		t.Fatalf("after reopening: %d, %v", n, ok)
	}
	files, _ := filepath.Glob(filepath.Join(c.dir, "*.bucket"))
	if len(files) != 1 {
		t.Errorf("two images of one folder in %d bucket files, want 1", len(files))
	}
	time.Sleep(2 * time.Millisecond)
	writeImage(t, other, "image B")
	c = reopen(t, c)
	if _, ok := get(c, other); ok {
		t.Errorf("a rewritten image came from the cache of another process")
	}
}

// TestCachePrunes: a bucket written keeps only fresh entries, so its size
// follows its folder: images removed or changed leave it, even ones this
// run did not ask about, and a folder with none left has no bucket.
func TestCachePrunes(t *testing.T) {
	c, img := newCache(t)
	dir := filepath.Dir(img)
	var imgs []string
	for i := 0; i < 5; i++ {
		p := filepath.Join(dir, fmt.Sprintf("vm%d.img", i))
		writeImage(t, p, fmt.Sprint("image ", i))
		put(t, c, p, nil, i)
		imgs = append(imgs, p)
	}
	c = reopen(t, c)
	if got := bucketNames(t, c, dir); len(got) != 5 {
		t.Fatalf("bucket holds %v, want 5 images", got)
	}
	os.Remove(imgs[0])
	time.Sleep(2 * time.Millisecond)
	writeImage(t, imgs[1], "changed")
	// this run asks about one image only: the others are checked by a stat
	if _, ok := get(c, imgs[2]); !ok {
		t.Fatal("an unchanged image missed")
	}
	c = reopen(t, c)
	want := []string{"vm2.img", "vm3.img", "vm4.img"}
	if got := bucketNames(t, c, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after removing vm0 and changing vm1 the bucket holds %v, want %v", got, want)
	}
	for _, p := range imgs[2:] {
		os.Remove(p)
	}
	if _, ok := get(c, imgs[2]); ok {
		t.Fatal("a removed image came from the cache")
	}
	c = reopen(t, c)
	if got := bucketNames(t, c, dir); got != nil {
		t.Errorf("a folder with no image left keeps a bucket of %v", got)
	}
}

// TestCacheMerges: two processes that describe different images of one
// folder at once both keep their entries (Flush merges under a lock).
func TestCacheMerges(t *testing.T) {
	c1, img := newCache(t)
	c2 := Open()
	other := filepath.Join(filepath.Dir(img), "b.img")
	writeImage(t, other, "image b")
	put(t, c1, img, nil, 1)
	put(t, c2, other, nil, 2)
	var wg sync.WaitGroup
	for _, c := range []*Cache{c1, c2} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Flush() }()
	}
	wg.Wait()
	c3 := Open()
	if n, ok := get(c3, img); !ok || n != 1 {
		t.Errorf("first process's entry: %d, %v", n, ok)
	}
	if n, ok := get(c3, other); !ok || n != 2 {
		t.Errorf("second process's entry: %d, %v", n, ok)
	}
}

// TestCacheConcurrent: goroutines reading, writing and flushing one cache
// (run under -race) see only right answers.
func TestCacheConcurrent(t *testing.T) {
	c, img := newCache(t)
	dir := filepath.Dir(img)
	var imgs []string
	for i := 0; i < 40; i++ {
		p := filepath.Join(dir, fmt.Sprintf("vm%02d.img", i))
		writeImage(t, p, fmt.Sprint("image ", i))
		imgs = append(imgs, p)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 5; r++ {
				for i, p := range imgs {
					if n, ok := get(c, p); ok && n != i {
						t.Errorf("%s: cached %d, want %d", p, n, i)
					} else if !ok {
						before, _ := Snapshot(p, nil)
						c.Put(p, before, nil, fact{i})
					}
				}
				if g == 0 {
					c.Flush()
				}
			}
		}()
	}
	wg.Wait()
	c = reopen(t, c)
	for i, p := range imgs {
		if n, ok := get(c, p); !ok || n != i {
			t.Errorf("%s after the goroutines: %d, %v", p, n, ok)
		}
	}
}

// TestCacheDamagedBucket: a bucket file that is not one (a crash, another
// program) is an empty bucket, replaced at the next write.
func TestCacheDamagedBucket(t *testing.T) {
	for _, data := range []string{"", "{", `{"version":1,"folder":"x","entries":{}}`, `{"version":2,"folder":"/elsewhere","entries":{}}`, `[1,2]`} {
		c, img := newCache(t)
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(c.dir, bucketName(filepath.Dir(img)))
		writeImage(t, file, data)
		if _, ok := get(c, img); ok {
			t.Errorf("bucket %q: a hit", data)
		}
		put(t, c, img, nil, 3)
		c = reopen(t, c)
		if n, ok := get(c, img); !ok || n != 3 {
			t.Errorf("bucket %q was not replaced: %d, %v", data, n, ok)
		}
	}
}

// TestCacheSweep: once a day the folder loses buckets of folders that are
// gone or that no run used for maxIdle, version 1 entries and temporary
// files, then the oldest buckets until it is under maxBytes.
func TestCacheSweep(t *testing.T) {
	c, img := newCache(t)
	put(t, c, img, nil, 1)
	c = reopen(t, c) // the first flush sweeps (no stamp yet) and stamps
	gone := filepath.Join(t.TempDir(), "gone")
	os.Mkdir(gone, 0o755)
	gimg := filepath.Join(gone, "g.img")
	writeImage(t, gimg, "gone soon")
	put(t, c, gimg, nil, 2)
	old := filepath.Join(c.dir, "0123456789abcdef0123456789abcdef.json")
	writeImage(t, old, "{}")
	tmp := filepath.Join(c.dir, ".bucket-123")
	writeImage(t, tmp, "half")
	hour := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, hour, hour)
	c = reopen(t, c)
	os.RemoveAll(gone)
	// not due: the stamp is fresh, nothing is swept
	put(t, c, img, nil, 1)
	c = reopen(t, c)
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("swept before it was due: %v", err)
	}
	// due: the stamp is a day old
	day := time.Now().Add(-25 * time.Hour)
	os.Chtimes(filepath.Join(c.dir, stampName), day, day)
	put(t, c, img, nil, 1)
	c = reopen(t, c)
	for _, p := range []string{old, tmp, filepath.Join(c.dir, bucketName(gone))} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the sweep (%v)", filepath.Base(p), err)
		}
	}
	if n, ok := get(c, img); !ok || n != 1 {
		t.Errorf("the sweep removed a bucket in use: %d, %v", n, ok)
	}

	// over maxBytes: the least recently used bucket goes
	second := filepath.Join(t.TempDir(), "b.img")
	writeImage(t, second, "second folder")
	put(t, c, second, nil, 5)
	c = reopen(t, c)
	month := time.Now().Add(-20 * 24 * time.Hour)
	os.Chtimes(filepath.Join(c.dir, bucketName(filepath.Dir(img))), month, month)
	os.Chtimes(filepath.Join(c.dir, stampName), day, day)
	defer func(m int64) { maxBytes = m }(maxBytes)
	maxBytes = 1
	if err := c.sweepIfDue(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, bucketName(filepath.Dir(img)))); !os.IsNotExist(err) {
		t.Errorf("the older bucket survived a sweep over maxBytes")
	}
}

// FuzzDecodeBucket: no bucket file makes the decoder panic, and what it
// accepts has entries with files.
func FuzzDecodeBucket(f *testing.F) {
	f.Add([]byte(`{"version":2,"folder":"/lib","entries":{"a.img":{"files":[{"path":"/lib/a.img","dev":1,"ino":2,"size":3,"mtime_ns":4,"ctime_ns":5}],"value":{"N":1}}}}`))
	f.Add([]byte(`{"version":2,"folder":"/lib","entries":{"a.img":null,"b":{"files":[]}}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		bf, err := decodeBucket(data)
		if err != nil {
			return
		}
		for name, e := range bf.Entries {
			if e == nil || len(e.Files) == 0 {
				t.Errorf("entry %q accepted without files", name)
			}
		}
	})
}
