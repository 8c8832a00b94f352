package tests

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sumFile(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestDaemonLifecycle: mount returns with the tree visible and the pid in
// --pid-file; unmount refuses while the tree is busy and says why, then
// succeeds and the daemon is gone; a mount that only read leaves the image
// byte-identical, mtime included.
func TestDaemonLifecycle(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f.bin"), 100000)
	ext := makeExt4(t, src, 16, "L")
	lib := t.TempDir()
	img := filepath.Join(lib, "d.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 16, typ: "L", fs: ext}})
	before := sumFile(t, img)
	st0, _ := os.Stat(img)

	pidFile := filepath.Join(t.TempDir(), "offvm.pid")
	mnt := mountLib(t, lib, "--pid-file", pidFile)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid file holds %q, not a live daemon", b)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "d.img", "p1", "f.bin")); err != nil {
		t.Fatalf("reading through the mount: %v", err)
	}

	// a process inside the tree keeps it busy
	busy := exec.Command("sleep", "30")
	busy.Dir = filepath.Join(mnt, "d.img", "p1")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	r := runOffvm(t, "unmount", mnt)
	busy.Process.Kill()
	busy.Wait()
	if r.code != 1 || !strings.Contains(r.err, mnt) {
		t.Errorf("unmount of a busy tree: exit %d, stderr %q; want 1 naming the mountpoint", r.code, r.err)
	}
	if !isMounted(mnt) {
		t.Fatalf("a refused unmount left the tree unmounted")
	}

	mustOffvm(t, "unmount", mnt)
	if isMounted(mnt) {
		t.Errorf("still mounted after unmount")
	}
	if !waitGone(pid, 5*time.Second) {
		t.Errorf("daemon %d still running after unmount", pid)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind")
	}
	if sumFile(t, img) != before {
		t.Errorf("a read-only visit changed the image")
	}
	if st1, _ := os.Stat(img); !st1.ModTime().Equal(st0.ModTime()) {
		t.Errorf("image mtime changed from %v to %v", st0.ModTime(), st1.ModTime())
	}
}

// TestForegroundSignal: mount -f serves until SIGTERM, then unmounts.
func TestForegroundSignal(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), 10)
	ext := makeExt4(t, src, 16, "L")
	lib := t.TempDir()
	makeDisk(t, filepath.Join(lib, "d.img"), "dos", []part{{sizeMiB: 16, typ: "83", fs: ext}})
	mnt := t.TempDir()
	cmd := exec.Command(offvm, "mount", "-f", lib, mnt)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for i := 0; i < 100 && !isMounted(mnt); i++ {
		sleepMs(50)
	}
	if !isMounted(mnt) {
		t.Fatalf("mount -f did not mount")
	}
	if _, err := os.Stat(filepath.Join(mnt, "d.img", "p1", "f")); err != nil {
		t.Errorf("stat through the mount: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mount -f exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mount -f did not exit after SIGTERM")
	}
	if isMounted(mnt) {
		t.Errorf("still mounted after SIGTERM")
	}
}
