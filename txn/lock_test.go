package txn

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/nolockfs"
	"github.com/offvm/offvm/internal/testutil"
)

func TestLockTwice(t *testing.T) {
	image := filepath.Join(t.TempDir(), "disk.img")
	rawImage(t, image, make([]byte, 1<<20))
	l1, err := Lock(image)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(image)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	t.Logf("second lock refused: %v", err)
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Lock(image)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	l2.Close()
}

// TestLockRefusesQemu: while qemu-io holds an image open, Lock refuses and
// names it; once qemu-io is gone, Lock succeeds.
func TestLockRefusesQemu(t *testing.T) {
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	image := filepath.Join(t.TempDir(), "disk.img")
	rawImage(t, image, make([]byte, 1<<20))
	cmd := exec.Command("qemu-io", "-f", "raw", image)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// qemu-io takes its locks right after it starts: poll for them
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := Lock(image)
		if err == nil {
			l.Close()
			if time.Now().After(deadline) {
				t.Fatal("Lock kept succeeding while qemu-io held the image")
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "qemu-io") {
			t.Fatalf("Lock: %v; want ErrLocked naming qemu-io", err)
		}
		t.Logf("refused: %v", err)
		break
	}
	stdin.Close()
	cmd.Wait()
	l, err := Lock(image)
	if err != nil {
		t.Fatalf("Lock after qemu-io quit: %v", err)
	}
	l.Close()
}

// TestLockKeepsQemuOut: while we hold the lock, qemu cannot open the
// image for writing (raw or qcow2), and qemu-img info on a qcow2 image
// (which, as for a running VM, wants no writer) fails too; after Close,
// all of them work.
func TestLockKeepsQemuOut(t *testing.T) {
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	rawImg := filepath.Join(dir, "disk.img")
	rawImage(t, rawImg, make([]byte, 1<<20))
	qcow := filepath.Join(dir, "disk.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", qcow, "1M")
	tests := []struct {
		name  string
		image string
		args  []string
		msg   string
	}{
		{"qemu-io write raw", rawImg, []string{"qemu-io", "-f", "raw", "-c", "write 0 512", rawImg}, `Failed to get "write" lock`},
		{"qemu-io write qcow2", qcow, []string{"qemu-io", "-f", "qcow2", "-c", "write 0 512", qcow}, `lock`},
		{"qemu-img info qcow2", qcow, []string{"qemu-img", "info", qcow}, `Failed to get shared "write" lock`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Lock(tt.image)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(tt.args[0], tt.args[1:]...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.msg) {
				t.Fatalf("%v under our lock: %v\n%s\nwant failure saying %q", tt.args, err, out, tt.msg)
			}
			l.Close()
			if out, err := exec.Command(tt.args[0], tt.args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v after Close: %v\n%s", tt.args, err, out)
			}
		})
	}
}

func TestLockMissingFile(t *testing.T) {
	_, err := Lock(filepath.Join(t.TempDir(), "absent.img"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Lock of a missing file: %v", err)
	}
}

// TestProbe: Probe sees a holder the way Lock does, and holds nothing
// itself: a Lock taken right after it succeeds, and a qemu-io holding the
// image is named.
func TestProbe(t *testing.T) {
	image := filepath.Join(t.TempDir(), "disk.img")
	rawImage(t, image, make([]byte, 1<<20))
	if err := Probe(image); err != nil {
		t.Fatalf("Probe of a free image: %v", err)
	}
	l, err := Lock(image)
	if err != nil {
		t.Fatalf("Lock after Probe: %v", err)
	}
	if err := Probe(image); !errors.Is(err, ErrLocked) {
		t.Fatalf("Probe while locked: %v, want ErrLocked", err)
	}
	l.Close()
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	cmd := exec.Command("qemu-io", "-f", "raw", image)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := Probe(image)
		if errors.Is(err, ErrLocked) {
			if !strings.Contains(err.Error(), "qemu-io") {
				t.Errorf("Probe does not name qemu-io: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Probe never saw qemu-io: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLockNoLocks: on a file system that refuses byte-range locks (a FUSE
// passthrough answering ENOLCK, as NFSv3 without its lock manager does),
// qemu-io cannot take its locks either; Lock fails with ENOLCK, naming the
// image and the byte, and is not mistaken for another holder (ErrLocked);
// Probe says the same, so ls shows the image as not writable.
func TestLockNoLocks(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	dir, mnt := t.TempDir(), t.TempDir()
	rawImage(t, filepath.Join(dir, "disk.img"), make([]byte, 1<<20))
	unmount, err := nolockfs.Mount(dir, mnt)
	if err != nil {
		t.Skipf("no FUSE here: %v", err)
	}
	defer unmount()
	image := filepath.Join(mnt, "disk.img")
	out, err := exec.Command("qemu-io", "-r", "-f", "raw", "-c", "read 0 512", image).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "lock") {
		t.Fatalf("qemu-io on the lockless file system: %v\n%s\n(want qemu to fail to lock: the file system would not refuse locks)", err, out)
	}
	t.Logf("qemu-io: %s", strings.TrimSpace(string(out)))
	l, err := Lock(image)
	if err == nil {
		l.Close()
		t.Fatal("Lock succeeded on a file system without locks")
	}
	want := "txn: lock " + image + " byte 100: no locks available"
	if !errors.Is(err, syscall.ENOLCK) || errors.Is(err, ErrLocked) || err.Error() != want {
		t.Fatalf("Lock: %v\nwant %q (ENOLCK, not ErrLocked)", err, want)
	}
	if err := Probe(image); !errors.Is(err, syscall.ENOLCK) || errors.Is(err, ErrLocked) {
		t.Fatalf("Probe: %v, want ENOLCK", err)
	}
}

// TestLockReader: readers that keep writers out share the image with each
// other, a writer is refused while one holds it (and a reader while a
// writer does), and qemu-io -r, a reader that tolerates writers, may still
// look.
func TestLockReader(t *testing.T) {
	image := filepath.Join(t.TempDir(), "disk.img")
	rawImage(t, image, make([]byte, 1<<20))
	r1, err := LockReader(image)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := LockReader(image)
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if _, err := Lock(image); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "write permission") {
		t.Fatalf("a writer beside readers: %v, want ErrLocked over the write permission", err)
	}
	if err := Probe(image); !errors.Is(err, ErrLocked) {
		t.Fatalf("Probe beside readers: %v, want ErrLocked", err)
	}
	if _, err := exec.LookPath("qemu-io"); err == nil {
		if out, err := exec.Command("qemu-io", "-r", "-f", "raw", "-c", "read 0 512", image).CombinedOutput(); err != nil {
			t.Errorf("qemu-io -r beside readers: %v\n%s", err, out)
		}
	}
	r1.Close()
	r2.Close()
	w, err := Lock(image)
	if err != nil {
		t.Fatalf("a writer once the readers left: %v", err)
	}
	defer w.Close()
	if _, err := LockReader(image); !errors.Is(err, ErrLocked) {
		t.Fatalf("a reader beside a writer: %v, want ErrLocked", err)
	}
}
