package fs

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/mount"
)

// TestInfoTellsTheStateOfEachRead: info.json is rendered for every read
// through a real FUSE mount, at the size of that rendering, on a
// read-write mount (the kernel sends OPEN: rendered there, direct I/O)
// and on a read-only one (no OPEN, pages kept: internal/noopen; each read
// drops the kernel's copy; renders again after infoQuiet without reads). The render here grows by one byte a time, so a stale page
// or a size from another rendering shows.
func TestInfoTellsTheStateOfEachRead(t *testing.T) {
	testutil.RequireRoot(t)
	for _, ro := range []bool{false, true} {
		lib := t.TempDir()
		fatImage(t, filepath.Join(lib, "one.img"), "first")
		var renders atomic.Int64
		info := func(*mount.Image) any {
			return map[string]string{"pad": string(make([]byte, renders.Add(1)))}
		}
		mnt := t.TempDir()
		srv, err := Mount(mnt, NewTree(Options{Library: lib, ReadOnly: ro, Info: info}), MountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := srv.Unmount(); err != nil {
				exec.Command("umount", "-l", mnt).Run()
			}
		})
		p := filepath.Join(mnt, "one.img", "info.json")
		last := -1
		for i := range 3 {
			// a read-only mount renders again once no read came for
			// infoQuiet: reads until then get the one before, whole
			deadline := time.Now().Add(5 * time.Second)
			for {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("read-only %v, read %d: %v", ro, i, err)
				}
				var v struct{ Pad string }
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatalf("read-only %v, read %d: %q is not one rendering: %v", ro, i, b, err)
				}
				if len(v.Pad) > last {
					last = len(v.Pad)
					break
				}
				if !ro || time.Now().After(deadline) {
					t.Fatalf("read-only %v, read %d: rendering of %d bytes, the one before had %d: not rendered again", ro, i, len(v.Pad), last)
				}
				time.Sleep(infoQuiet / 4)
			}
		}
		if ro {
			// the zero-message opens are on: SAM-like refusals and this
			// test rest on it (internal/noopen)
			if _, err := os.ReadFile(filepath.Join(mnt, "one.img", "p0", "FILE.TXT")); err != nil {
				t.Errorf("a file of the read-only mount: %v", err)
			}
		}
	}
}
