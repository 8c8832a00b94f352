package ntfs

import (
	"bytes"
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/offvm/offvm/volume"
)

// readAll reads a file through ReadAt in chunks of random sizes (a READ
// of the kernel is up to 1 MiB, from any offset).
func readAll(v *Volume, ino volume.Ino, rnd *mrand.Rand) ([]byte, error) {
	var out []byte
	for off := int64(0); ; {
		buf := make([]byte, 1+rnd.Intn(96<<10))
		n, err := v.ReadAt(ino, buf, off)
		out, off = append(out, buf[:n]...), off+int64(n)
		if err == io.EOF || (err == nil && n == 0) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// hostFiles reads every regular file under a mounted tree (ntfs-3g's view).
func hostFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		out["/"+mustRel(t, root, p)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustRel(t *testing.T, root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReadViewParallel drives the read views (data_read.go) from many
// goroutines at once, over the same and different files (resident,
// non-resident, compressed, sparse), while a writer changes other files
// through the engine's write path: every read must see ntfs-3g's bytes,
// a file read before a write must read the new bytes after it (its view
// dropped with its record), and ntfs-3g must read the written image as
// the engine did. Run with -race.
func TestReadViewParallel(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	mnt, unmount := mount3g(t, img, "ro")
	want := hostFiles(t, mnt)
	unmount()
	v := openVol(t, img, 0, Options{})
	var paths []string
	inos := map[string]volume.Ino{}
	for p := range want {
		ino, err := resolve(v, p)
		if err != nil {
			t.Fatal(err)
		}
		paths, inos[p] = append(paths, p), ino
	}
	sort.Strings(paths)
	// what the writer changes, and the bytes each file holds after
	written := map[string]func(ino volume.Ino) ([]byte, error){
		"/small.txt": func(ino volume.Ino) ([]byte, error) { // resident -> non-resident
			b := pattern(70000, 9)
			_, err := v.WriteAt(ino, b, 0)
			return b, err
		},
		"/medium.bin": func(ino volume.Ino) ([]byte, error) { // in place, same runs
			b := append([]byte(nil), want["/medium.bin"]...)
			copy(b[1000:], pattern(5000, 3))
			_, err := v.WriteAt(ino, b[1000:6000], 1000)
			return b, err
		},
		"/large.bin": func(ino volume.Ino) ([]byte, error) { // shrunk, then grown: new runs
			if err := v.Truncate(ino, 12345); err != nil {
				return nil, err
			}
			b := append(append([]byte(nil), want["/large.bin"][:12345]...), pattern(1<<20, 4)...)
			_, err := v.WriteAt(ino, b[12345:], 12345)
			return b, err
		},
		"/many/file-0100.dat": func(ino volume.Ino) ([]byte, error) { // emptied
			return []byte{}, v.Truncate(ino, 0)
		},
		"/sparse.bin": func(ino volume.Ino) ([]byte, error) { // a hole filled
			b := append([]byte(nil), want["/sparse.bin"]...)
			copy(b[1<<20:], pattern(300000, 5))
			_, err := v.WriteAt(ino, b[1<<20:1<<20+300000], 1<<20)
			return b, err
		},
	}
	var mu sync.Mutex // guards want, which the writer updates
	check := func(p string, rnd *mrand.Rand) error {
		got, err := readAll(v, inos[p], rnd)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		mu.Lock()
		w := want[p]
		mu.Unlock()
		if !bytes.Equal(got, w) {
			return fmt.Errorf("%s: read %d bytes that differ from the %d expected", p, len(got), len(w))
		}
		return nil
	}
	// readers of the files no one writes, each with its own random order
	rnds := make([]*mrand.Rand, 8)
	for g := range rnds {
		rnds[g] = mrand.New(mrand.NewSource(int64(g)))
	}
	stop := startReaders(t, len(rnds), func(g, _ int) error {
		for _, i := range rnds[g].Perm(len(paths)) {
			if written[paths[i]] != nil {
				continue
			}
			if err := check(paths[i], rnds[g]); err != nil {
				return err
			}
		}
		return nil
	})
	rnd := mrand.New(mrand.NewSource(99))
	for p, write := range written {
		var same sync.WaitGroup
		for g := 0; g < 4; g++ { // parallel readers of the same file make its view
			same.Add(1)
			go func(seed int64) {
				defer same.Done()
				if err := check(p, mrand.New(mrand.NewSource(seed))); err != nil {
					t.Errorf("before the write: %v", err)
				}
			}(int64(g))
		}
		same.Wait()
		b, err := write(inos[p])
		if err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
		mu.Lock()
		want[p] = b
		mu.Unlock()
		if err := check(p, rnd); err != nil {
			t.Errorf("after the write: %v", err)
		}
	}
	stop()
	if t.Failed() {
		return
	}
	checkConsistent(t, img)
	mnt, _ = mount3g(t, img, "ro")
	got := hostFiles(t, mnt)
	for _, p := range paths {
		if !bytes.Equal(got[p], want[p]) {
			t.Errorf("ntfs-3g reads %d bytes of %s from the written image, the engine %d (or other bytes)", len(got[p]), p, len(want[p]))
		}
	}
}
