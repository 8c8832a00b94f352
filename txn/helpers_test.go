package txn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

// TestMain lets the crash tests re-run this binary as a child that
// commits, rolls back or recovers, and dies at a fault point.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TXN_CHILD"); mode != "" {
		if err := runChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// openRaw is an OpenFunc for raw images.
func openRaw(path string, opts vdisk.Options) (vdisk.Disk, error) {
	f, err := opts.Open(path, opts.Writable)
	if err != nil {
		return nil, err
	}
	return raw.Open(f, opts)
}

var openers = map[string]OpenFunc{"raw": openRaw, "tfmt": openTfmt}

// writeTarget puts into o every block where target differs from what o
// reads now, the way a file system flushing its changes would.
func writeTarget(o *Overlay, target []byte) error {
	cur := make([]byte, BlockSize)
	for off := int64(0); off < int64(len(target)); off += BlockSize {
		t := target[off:min(off+BlockSize, int64(len(target)))]
		if _, err := o.ReadAt(cur[:len(t)], off); err != nil && err != io.EOF {
			return err
		}
		if !bytes.Equal(cur[:len(t)], t) {
			if _, err := o.WriteAt(t, off); err != nil {
				return err
			}
		}
	}
	return nil
}

// rawOverlay opens a raw image with an overlay in dir, closed when the
// test ends.
func rawOverlay(t *testing.T, image, dir string) *Overlay {
	t.Helper()
	base, err := openRaw(image, vdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOverlay(base, dir)
	if err != nil {
		base.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// commitTarget opens the image, writes target through an overlay and
// commits it.
func commitTarget(image, format string, target []byte) (Result, error) {
	open := openers[format]
	base, err := open(image, vdisk.Options{})
	if err != nil {
		return Result{}, err
	}
	o, err := NewOverlay(base, filepath.Dir(image))
	if err != nil {
		base.Close()
		return Result{}, err
	}
	defer o.Close()
	if err := writeTarget(o, target); err != nil {
		return Result{}, err
	}
	return Commit(image, o, open)
}

// hashDir is the sha256 of every file in dir, sidecars aside, as
// "name=hash" lines: the state of an image, all its host files.
func hashDir(t testing.TB, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range ents {
		if IsSidecar(e.Name()) || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		lines = append(lines, e.Name()+"="+hex.EncodeToString(s[:]))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// readVirtual reads the whole virtual disk of an image.
func readVirtual(t testing.TB, image, format string) []byte {
	t.Helper()
	d, err := openers[format](image, vdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// directWrite applies target to an image with the format writing the host
// files itself, no txn involved: what a commit must produce.
func directWrite(t testing.TB, image, format string, target []byte) {
	t.Helper()
	d, err := openers[format](image, vdisk.Options{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	cur := make([]byte, len(target))
	if _, err := d.ReadAt(cur, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	for off := 0; off < len(target); off += BlockSize {
		end := min(off+BlockSize, len(target))
		if !bytes.Equal(cur[off:end], target[off:end]) {
			if _, err := d.WriteAt(target[off:end], int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// sidecars lists the txn files present beside image, the history
// directory aside (history_test.go checks it).
func sidecars(t testing.TB, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var s []string
	for _, e := range ents {
		if IsSidecar(e.Name()) && !strings.HasSuffix(e.Name(), HistorySuffix) {
			s = append(s, e.Name())
		}
	}
	return s
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
