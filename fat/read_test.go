package fat

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/volume"
)

// srcTree writes the files mtools will put on the volume.
func srcTree(t *testing.T, manyCount int) (string, *model) {
	t.Helper()
	dir := t.TempDir()
	m := newModel()
	rng := rand.New(rand.NewSource(7))
	random := func(n int) []byte { b := make([]byte, n); rng.Read(b); return b }
	files := map[string][]byte{
		"/readme.txt":    []byte("lower-case 8.3\n"),
		"/MixedCase.TXT": []byte("mixed\n"),
		"/UPPER.TXT":     []byte("upper\n"),
		"/Long Name With Spaces and more than 13 chars.data": random(100_000),
		"/Ünïcödé — 日本語 файл.txt":                            []byte("unicode\n"),
		"/binary file.bin":             random(5000),
		"/.hidden":                     []byte("dot file\n"),
		"/a.b.c.d":                     []byte("dots\n"),
		"/empty":                       nil,
		"/big.bin":                     random(1 << 20),
		"/sub/deeper/leaf.txt":         []byte("leaf\n"),
		"/sub/Another Long Sub Name/x": []byte("x"),
	}
	for i := range manyCount {
		files[fmt.Sprintf("/many/%04d file with a long name.txt", i)] = []byte(fmt.Sprintln(i))
	}
	m.dirs["/emptydir"] = true
	for p, data := range files {
		m.files[p] = data
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			m.dirs[d] = true
		}
	}
	for d := range m.dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range m.files {
		if err := os.WriteFile(filepath.Join(dir, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, m
}

// TestReadMtoolsTree fills volumes with mcopy -s and reads them back.
func TestReadMtoolsTree(t *testing.T) {
	requireTools(t)
	src, m := srcTree(t, 1000)
	entries, _ := os.ReadDir(src)
	var top []string
	for _, e := range entries {
		top = append(top, filepath.Join(src, e.Name()))
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			img := mkfs(t, f, "OFFVM TEST")
			mtools(t, "mcopy", append(append([]string{"-s", "-m", "-i", img}, top...), "::/")...)
			fsckClean(t, img)
			v, err := Open(openDev(t, img, 0, 0), Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			if v.Type() != fmt.Sprintf("fat%d", f.fat) || v.Label() != "OFFVM TEST" {
				t.Fatalf("type %q label %q", v.Type(), v.Label())
			}
			compareTree(t, v, src, m)
			if _, err := v.Create(v.Root(), "x", 0o644); err == nil {
				t.Fatal("read-only volume created a file")
			}
		})
	}
}

// compareTree walks the engine's tree and compares it with the model and
// the source files' times.
func compareTree(t *testing.T, v *Volume, src string, m *model) {
	t.Helper()
	seen := 0
	var walk func(ino volume.Ino, p string)
	walk = func(ino volume.Ino, p string) {
		ents, err := v.ReadDir(ino)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			cp := p + "/" + e.Name
			seen++
			a, err := v.Lookup(ino, strings.ToUpper(e.Name))
			if err != nil || a.Ino != e.Ino {
				t.Fatalf("%s: upper-case lookup gives %v %v, listing ino %d", cp, a.Ino, err, e.Ino)
			}
			if e.Mode.IsDir() {
				if !m.dirs[cp] {
					t.Fatalf("unexpected directory %s", cp)
				}
				walk(e.Ino, cp)
				continue
			}
			want, ok := m.files[cp]
			if !ok {
				t.Fatalf("unexpected file %s", cp)
			}
			got := make([]byte, a.Size+10)
			n, err := v.ReadAt(e.Ino, got, 0)
			if err != io.EOF || a.Size != int64(len(want)) || !bytes.Equal(got[:n], want) {
				t.Fatalf("%s: read %d bytes (%v), size %d, want %d bytes", cp, n, err, a.Size, len(want))
			}
			st, _ := os.Stat(filepath.Join(src, cp))
			if d := a.Mtime.Sub(st.ModTime().UTC().Truncate(2 * time.Second)); d < 0 || d > 2*time.Second {
				t.Fatalf("%s: mtime %v, source %v", cp, a.Mtime, st.ModTime().UTC())
			}
		}
	}
	walk(v.Root(), "")
	if seen != len(m.dirs)+len(m.files) {
		t.Fatalf("walked %d names, want %d", seen, len(m.dirs)+len(m.files))
	}
}
