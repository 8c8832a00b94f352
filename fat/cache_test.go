package fat

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/volume"
)

// TestParallelReadersWritersEvicting is the race run with caches of one
// byte: every directory and chain put evicts all others, so readers and
// writers keep reading entries and chains again from the device and the FAT
// while the other side changes them (run under -race). The image is proved
// by fsck.fat -n, mdir and mcopy as in TestParallelReadersWriters.
func TestParallelReadersWritersEvicting(t *testing.T) {
	requireTools(t)
	for _, f := range formatNamed("fat12-4096", "fat32-512") {
		t.Run(f.name, func(t *testing.T) { raceAndCheck(t, f, Options{cacheBytes: 1}) })
	}
}

// TestEvictionKeepsInosAndBytes walks a tree mcopy wrote, twice, with
// caches too small to hold it: the second walk (everything read again)
// must give the same Inos, names and bytes as the first, and the caches
// must stay within their bound.
func TestEvictionKeepsInosAndBytes(t *testing.T) {
	requireTools(t)
	cases := []struct {
		name   string
		budget int // bytes each cache may hold; 0 is the default
	}{
		{"default", 0},
		{"one-entry", 1},
		{"few-entries", 3 * 4096},
	}
	f := formatNamed("fat16-4096")[0]
	img := mkfs(t, f, "")
	src := t.TempDir()
	for d := range 12 {
		for i := range 8 {
			p := filepath.Join(src, fmt.Sprintf("dir%02d", d), fmt.Sprintf("A long file name %d.txt", i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, bytes.Repeat([]byte{byte(d), byte(i)}, 3000*(i+1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mtools(t, "mcopy", "-s", "-i", img, filepath.Join(src, fmt.Sprintf("dir%02d", d)), "::")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Open(openDev(t, img, 0, 0), Options{ReadOnly: true, cacheBytes: c.budget})
			if err != nil {
				t.Fatal(err)
			}
			first := walkAll(t, v, src)
			if len(first) != 12*9 {
				t.Fatalf("walk found %d names, want %d", len(first), 12*9)
			}
			second := walkAll(t, v, src)
			for p, ino := range first {
				if second[p] != ino {
					t.Errorf("%s: Ino %d on the second walk, %d on the first", p, second[p], ino)
				}
			}
			max := c.budget
			if max == 0 {
				max = maxCachedDirBytes
			}
			if c.budget == 1 {
				// One value larger than the bound is kept, alone.
				if n := v.dirs.Len(); n != 1 {
					t.Errorf("a one-byte directory cache holds %d directories", n)
				}
			} else if got := v.dirs.Cost(); got > max {
				t.Errorf("directory cache holds %d bytes, bound %d", got, max)
			}
			if c.budget > 1 && v.chains.Cost() > max {
				t.Errorf("chain cache holds %d bytes, bound %d", v.chains.Cost(), max)
			}
		})
	}
}

// walkAll lists every directory, reads every file (checking its bytes
// against the host copy under src) and returns path → Ino.
func walkAll(t *testing.T, v *Volume, src string) map[string]volume.Ino {
	t.Helper()
	out := map[string]volume.Ino{}
	var walk func(ino volume.Ino, p string)
	walk = func(ino volume.Ino, p string) {
		ents, err := v.ReadDir(ino)
		if err != nil {
			t.Fatalf("readdir %s: %v", p, err)
		}
		for _, e := range ents {
			q := p + "/" + e.Name
			out[q] = e.Ino
			if a, err := v.Lookup(ino, e.Name); err != nil || a.Ino != e.Ino {
				t.Fatalf("lookup %s: Ino %d, %v; listed as %d", q, a.Ino, err, e.Ino)
			}
			if e.Mode.IsDir() {
				walk(e.Ino, q)
				continue
			}
			want, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(q)))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want)+1)
			n, err := v.ReadAt(e.Ino, got, 0)
			if err != nil && err != io.EOF {
				t.Fatalf("read %s: %v", q, err)
			}
			if !bytes.Equal(got[:n], want) {
				t.Fatalf("%s: read %d bytes unlike mcopy's %d", q, n, len(want))
			}
		}
	}
	walk(v.Root(), "")
	return out
}
