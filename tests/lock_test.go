package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// TestLocks: an image a running qemu holds is shown read-only with the
// reason; an image offvm holds cannot be opened for writing by qemu; a
// parent of another image in the library is read-only.
func TestLocks(t *testing.T) {
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f.txt"), 10)
	fat := makeFAT(t, src, 16, 16, "D")
	lib := t.TempDir()
	busy := filepath.Join(lib, "busy.img")
	free := filepath.Join(lib, "free.img")
	makeDisk(t, busy, "dos", []part{{sizeMiB: 16, typ: "6", fs: fat}})
	makeDisk(t, free, "dos", []part{{sizeMiB: 16, typ: "6", fs: fat}})
	run(t, "qemu-img", "convert", "-O", "qcow2", free, filepath.Join(lib, "base.qcow2"))
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", filepath.Join(lib, "child.qcow2"))

	// qemu holds busy.img for writing
	q := exec.Command("qemu-io", "-f", "raw", busy)
	stdin, _ := q.StdinPipe()
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); q.Process.Kill(); q.Wait() }()
	time.Sleep(500 * time.Millisecond)

	mnt := mountLib(t, lib)
	inf := infoOf(t, filepath.Join(mnt, "busy.img"))
	if inf["writable"] != false || !strings.Contains(inf["read_only_reason"].(string), "in use") {
		t.Errorf("busy.img: writable %v, reason %v", inf["writable"], inf["read_only_reason"])
	}
	err := os.WriteFile(filepath.Join(mnt, "busy.img", "p1", "new.txt"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into an image qemu holds: %v, want EROFS", err)
	}
	base := infoOf(t, filepath.Join(mnt, "base.qcow2"))
	if base["writable"] != false || !strings.Contains(base["read_only_reason"].(string), "parent") {
		t.Errorf("base.qcow2: writable %v, reason %v", base["writable"], base["read_only_reason"])
	}
	// offvm holds free.img: qemu may not write it
	if infoOf(t, filepath.Join(mnt, "free.img"))["writable"] != true {
		t.Fatalf("free.img is not writable")
	}
	out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write 0 512", free).CombinedOutput()
	if err == nil && !strings.Contains(string(out), "lock") {
		t.Errorf("qemu-io wrote an image offvm holds: %s", out)
	}
}
