package txn

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// smallFS mounts a tmpfs of size bytes on a new directory.
func smallFS(t *testing.T, size int64) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func growFS(t *testing.T, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
}

// TestCommitNoSpace: on a file system too small for a commit, the commit
// fails with ENOSPC wherever it runs out (refused by the free-space
// check, or, when that check is fooled, in staging, in the journal or in
// the apply), the image is byte-identical, no sidecar is left, and the
// overlay keeps every change: once there is room, the same commit lands.
func TestCommitNoSpace(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name   string
		format string
		fsSize int64
		lie    bool // make the free-space check see room that is not there
		setup  func(t *testing.T, image string) []byte
	}{
		{"checked before staging", "raw", 1*mib + 512<<10, false, func(t *testing.T, image string) []byte {
			old := randomBytes(70, 1<<20)
			rawImage(t, image, old)
			target := bytes.Clone(old)
			copy(target[4096:], randomBytes(71, 700<<10))
			return target
		}},
		{"journal runs out", "raw", 1*mib + 512<<10, true, func(t *testing.T, image string) []byte {
			old := randomBytes(72, 1<<20)
			rawImage(t, image, old)
			target := bytes.Clone(old)
			copy(target[4096:], randomBytes(73, 400<<10))
			return target
		}},
		{"apply runs out (files grow)", "tfmt", 1 * mib, true, func(t *testing.T, image string) []byte {
			tfmtImage(t, image, 4<<20, nil)
			target := make([]byte, 4<<20)
			copy(target[8192:], randomBytes(74, 600<<10))
			return target
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := smallFS(t, c.fsSize)
			image := filepath.Join(dir, "disk.img")
			target := c.setup(t, image)
			before := hashDir(t, dir)
			if c.lie {
				real := freeSpace
				freeSpace = func(string) (int64, error) { return 1 << 40, nil }
				t.Cleanup(func() { freeSpace = real })
			}
			open := openers[c.format]
			base, err := open(image, vdisk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o, err := NewOverlay(base, t.TempDir()) // the overlay lives elsewhere, as $TMPDIR does
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if err := writeTarget(o, target); err != nil {
				t.Fatal(err)
			}
			_, err = Commit(image, o, open)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Commit on a full file system: %v, want ENOSPC", err)
			}
			t.Logf("refused: %v", err)
			var se *SpaceError
			if !c.lie && !errors.As(err, &se) {
				t.Errorf("the free-space check did not refuse first: %v", err)
			}
			if hashDir(t, dir) != before || len(sidecars(t, dir)) != 0 || !o.Dirty() {
				t.Fatalf("after ENOSPC: image changed %v, sidecars %v, overlay dirty %v", hashDir(t, dir) != before, sidecars(t, dir), o.Dirty())
			}
			growFS(t, dir, 64*mib)
			if _, err := Commit(image, o, open); err != nil {
				t.Fatalf("Commit once there is room: %v", err)
			}
			if !bytes.Equal(readVirtual(t, image, c.format), target) {
				t.Fatal("the retried commit did not land")
			}
		})
	}
}

// TestReleaseIgnoresFaultEnv: without -tags offvmfault, OFFVM_FAULT does
// nothing at all.
func TestReleaseIgnoresFaultEnv(t *testing.T) {
	if FaultsBuilt {
		t.Skip("fault points are built in this test binary")
	}
	t.Setenv(FaultEnv, FaultApplyError)
	dir := t.TempDir()
	image := filepath.Join(dir, "disk.img")
	target := scenarios[0].setup(t, image)
	if _, err := commitTarget(image, "raw", target); err != nil {
		t.Fatalf("a release build honoured %s: %v", FaultEnv, err)
	}
	if !bytes.Equal(readVirtual(t, image, "raw"), target) {
		t.Fatal("commit did not land")
	}
}
