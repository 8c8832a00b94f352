package txn

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// viewHash is hashDir of the image's files as view v shows them.
func viewHash(t *testing.T, v *View, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var lines []string
	for _, e := range ents {
		if IsSidecar(e.Name()) || e.IsDir() {
			continue
		}
		f, err := v.OpenFile(filepath.Join(dir, e.Name()), false)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := f.Size()
		b := make([]byte, n+10)
		m, err := f.ReadAt(b, 0)
		if err != io.EOF || int64(m) != n {
			t.Fatalf("view of %s: read %d of %d: %v", e.Name(), m, n, err)
		}
		f.Close()
		s := sha256.Sum256(b[:m])
		lines = append(lines, e.Name()+"="+hex.EncodeToString(s[:]))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestHistoryView: the view before and after each commit is, file by
// file, the state saved then (the test format's files grow and shrink).
func TestHistoryView(t *testing.T) {
	for _, format := range []string{"raw", "tfmt"} {
		f := newHistoryFixture(t, format)
		for id := 1; id <= 3; id++ {
			for _, before := range []bool{true, false} {
				v, err := HistoryView(f.image(), id, before)
				if err != nil {
					t.Fatal(err)
				}
				want := f.states[id]
				if before {
					want = f.states[id-1]
				}
				if viewHash(t, v, f.dir) != want {
					t.Errorf("%s: view of commit %d (before %v) is not the state saved then", format, id, before)
				}
				v.Close()
			}
		}
		if _, err := v0(f); err == nil {
			t.Error("a view of a commit that does not exist")
		}
		if hashDir(t, f.dir) != f.states[3] {
			t.Fatal("a view wrote to the image")
		}
	}
}

func v0(f *historyFixture) (*View, error) { return HistoryView(f.image(), 7, true) }
