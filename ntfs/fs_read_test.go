package ntfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/offvm/offvm/volume"
)

// TestDirIndexCacheParallelThenWrite: a directory's opened index is
// cached (fs_read.go, dirOf) and shared by parallel lookups; every write
// of the directory's record drops it, so that a name created, renamed or
// removed is found (or not) by the next lookup. /emptydir starts with its
// entries in the index root (in the record) and grows an allocation while
// the writer fills it: the root and the runlist both change under the
// readers. Checked at the end by ntfs-3g on the written image. Run with
// -race.
func TestDirIndexCacheParallelThenWrite(t *testing.T) {
	requireNTFSTools(t)
	img := baseImage(t, t.TempDir(), 4096)
	v := openVol(t, img, 0, Options{})
	many := mustResolve(t, v, "/many")
	small, err := resolve(v, "/emptydir")
	if err != nil {
		t.Fatal(err)
	}
	const files = 60
	name := func(i int) string { return fmt.Sprintf("entry-with-a-long-name-%03d.txt", i) }
	// lookups of names no one changes, in both
	stop := startReaders(t, 6, func(g, round int) error {
		i := (g*37 + round) % 300
		if _, err := v.Lookup(many, fmt.Sprintf("file-%04d.dat", i)); err != nil {
			return err
		}
		if _, err := v.Lookup(small, "missing"); !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("missing in /emptydir: %v, want ENOENT", err)
		}
		return nil
	})
	lookupSize := func(dir volume.Ino, n string) (int64, error) {
		a, err := v.Lookup(dir, n)
		return a.Size, err
	}
	for i := 0; i < files; i++ {
		a, err := v.Create(small, name(i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.WriteAt(a.Ino, pattern(i+1, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
		if n, err := lookupSize(small, name(i)); err != nil || n != int64(i+1) {
			t.Fatalf("%s right after its create: size %d, %v", name(i), n, err)
		}
	}
	for i := 0; i < files; i += 3 {
		if err := v.Unlink(small, name(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Lookup(small, name(i)); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("%s right after its unlink: %v, want ENOENT", name(i), err)
		}
	}
	if err := v.Rename(small, name(1), many, "moved.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Lookup(small, name(1)); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("%s after its rename away: %v, want ENOENT", name(1), err)
	}
	if n, err := lookupSize(many, "moved.txt"); err != nil || n != 2 {
		t.Errorf("moved.txt after the rename: size %d, %v; want 2", n, err)
	}
	stop()
	if t.Failed() {
		return
	}
	checkConsistent(t, img)
	mnt, _ := mount3g(t, img, "ro")
	for i := 0; i < files; i++ {
		st, err := os.Stat(filepath.Join(mnt, "emptydir", name(i)))
		switch {
		case i%3 == 0 || i == 1:
			if !os.IsNotExist(err) {
				t.Errorf("ntfs-3g: %s should be gone: %v", name(i), err)
			}
		case err != nil || st.Size() != int64(i+1):
			t.Errorf("ntfs-3g: %s: %v (want %d bytes)", name(i), err, i+1)
		}
	}
	if st, err := os.Stat(filepath.Join(mnt, "many", "moved.txt")); err != nil || st.Size() != 2 {
		t.Errorf("ntfs-3g: many/moved.txt: %v", err)
	}
}
