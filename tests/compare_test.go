package tests

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// compareTrees checks that got (a directory inside the offvm mount) holds
// exactly what want (the source the real tool copied in) holds: the same
// names, types, sizes, bytes and link targets. Names in ignore (at any
// depth) are file-system furniture: lost+found, System Volume Information.
func compareTrees(t *testing.T, want, got string, ignore ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, n := range ignore {
		skip[n] = true
	}
	count := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		g := filepath.Join(got, rel)
		wi, _ := os.Lstat(p)
		gi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s: missing in the mount: %v", rel, err)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		count++
		switch {
		case wi.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, err := os.Readlink(g)
			if err != nil || gt != wt {
				t.Errorf("%s: link target %q, want %q (%v)", rel, gt, wt, err)
			}
		case wi.IsDir():
			if !gi.IsDir() {
				t.Errorf("%s: not a directory in the mount", rel)
				return nil
			}
			compareNames(t, rel, p, g, skip)
		default:
			if !gi.Mode().IsRegular() {
				t.Errorf("%s: mode %v in the mount, want a regular file", rel, gi.Mode())
				return nil
			}
			if gi.Size() != wi.Size() {
				t.Errorf("%s: size %d, want %d", rel, gi.Size(), wi.Size())
			}
			if a, b := hashFile(t, p), hashFile(t, g); !bytes.Equal(a, b) {
				t.Errorf("%s: content differs", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count < 2 {
		t.Fatalf("compared only %d entries: the source tree is empty?", count)
	}
}

func compareNames(t *testing.T, rel, want, got string, skip map[string]bool) {
	t.Helper()
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
		}
		var out []string
		for _, e := range ents {
			if !skip[e.Name()] {
				out = append(out, e.Name())
			}
		}
		sort.Strings(out)
		return out
	}
	w, g := names(want), names(got)
	if strings.Join(w, "\x00") != strings.Join(g, "\x00") {
		t.Errorf("%s: listing differs:\n got %d names %q\nwant %d names %q", rel, len(g), clip(g), len(w), clip(w))
	}
}

func clip(s []string) []string {
	if len(s) > 8 {
		return append(s[:8:8], "...")
	}
	return s
}

func hashFile(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Errorf("%v", err)
		return nil
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Errorf("reading %s: %v", p, err)
		return nil
	}
	return h.Sum(nil)
}
