package inventory

import (
	"encoding/json"
	"os"
	"path/filepath"
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
