package ntfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// cachedEntry finds name in directory dir through the cache alone: the
// directory's inode and every index block on the path must be cached
// (ENODATA when one is not). It is how a lookup right after a write
// finds what the write installed (op.go installInodes, index_edit.go
// flushNodes) instead of reading the device again.
func cachedEntry(v *Volume, dir uint64, name string) (*indexEntry, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.cache.getInode(dir) == nil {
		return nil, fmt.Errorf("directory %d: inode not cached: %w", dir, syscall.ENODATA)
	}
	di, err := v.dirOf(dir) // made from the cached inode
	if err != nil {
		return nil, err
	}
	key := encodeName(name)
	for n := di.root; ; {
		keys := n.entries[:len(n.entries)-1]
		i := sort.Search(len(keys), func(i int) bool { return v.up.collate(key, keys[i].name) <= 0 })
		if i < len(keys) && v.up.collate(key, keys[i].name) == 0 {
			return &keys[i], nil
		}
		next := n.entries[i].child
		if next < 0 {
			return nil, syscall.ENOENT
		}
		if n = v.cache.getNode(dir, next); n == nil {
			return nil, fmt.Errorf("directory %d: index block %d not cached: %w", dir, next, syscall.ENODATA)
		}
	}
}

// TestDirIndexCacheInstalledByWrites: a create or an unlink in a directory
// with index blocks leaves the directory's inode and the index blocks it
// wrote in the cache, parsed as the device now holds them: right after
// each create the new name is found there with the new file's reference,
// right after each unlink it is gone, while parallel lookups of names no
// one changes keep finding them. The test fails if the writers drop what
// they change (nothing cached) as well as if they install a stale copy
// (the name missing after create, or still there after unlink). At the
// end ntfs-3g lists the directory as the engine does and ntfsresize
// accepts the image. Run with -race.
func TestDirIndexCacheInstalledByWrites(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	v := openVol(t, img, 0, Options{})
	many := mustResolve(t, v, "/many")
	stable := func(i int) string { return fmt.Sprintf("file-%04d.dat", i%300) }
	want := map[string]volume.Ino{}
	for i := 0; i < 300; i++ {
		a, err := v.Lookup(many, stable(i))
		if err != nil {
			t.Fatal(err)
		}
		want[stable(i)] = a.Ino
	}
	stop := startReaders(t, 4, func(g, round int) error {
		n := stable(g*71 + round)
		a, err := v.Lookup(many, n)
		if err != nil || a.Ino != want[n] {
			return fmt.Errorf("lookup %s beside the writer: ino %d, %v; want %d", n, a.Ino, err, want[n])
		}
		return nil
	})
	name := func(i int) string { return fmt.Sprintf("new-patch-file-%d-with-a-long-name.dll", i) }
	const files = 150
	for i := 0; i < files; i++ {
		a, err := v.Create(many, name(i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cachedEntry(v, uint64(many), name(i))
		if err != nil || e.ref&refNumMask != uint64(a.Ino) {
			t.Fatalf("%s right after its create, in the cache: %v (entry %+v), want record %d", name(i), err, e, a.Ino)
		}
	}
	for i := 0; i < files; i += 2 {
		if err := v.Unlink(many, name(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := cachedEntry(v, uint64(many), name(i)); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("%s right after its unlink, in the cache: %v, want ENOENT", name(i), err)
		}
		if _, err := v.Lookup(many, name(i)); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("%s right after its unlink: %v, want ENOENT", name(i), err)
		}
		if _, err := cachedEntry(v, uint64(many), name(i+1)); err != nil {
			t.Fatalf("%s beside an unlink, in the cache: %v", name(i+1), err)
		}
	}
	stop()
	if t.Failed() {
		return
	}
	ents, err := v.ReadDir(many)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name)
	}
	checkConsistent(t, img)
	mnt, _ := mount3g(t, img, "ro")
	host, err := os.ReadDir(mnt + "/many")
	if err != nil {
		t.Fatal(err)
	}
	var by3g []string
	for _, e := range host {
		by3g = append(by3g, e.Name())
	}
	slices.Sort(got)
	slices.Sort(by3g)
	if len(by3g) != 300+files/2 || !slices.Equal(got, by3g) {
		t.Errorf("ntfs-3g lists %d names in /many, the engine %d (want %d); they differ: %v", len(by3g), len(got), 300+files/2, !slices.Equal(got, by3g))
	}
}
