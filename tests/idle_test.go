package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// qemuCanOpen reports whether qemu-img can open the image, which it
// cannot while an offvm mount holds it writable (qemu's locks).
func qemuCanOpen(img string) bool {
	return exec.Command("qemu-img", "info", img).Run() == nil
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestIdleImagesClose: an image the mount only looked at is closed once
// idle (qemu can take it again), and opens again on the next access; an
// image holding changes stays open and its changes are committed.
func TestIdleImagesClose(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.bin"), 70000)
	lib := t.TempDir()
	imgs := []string{"one.qcow2", "two.qcow2"}
	for _, name := range imgs {
		raw := filepath.Join(t.TempDir(), "d.raw")
		makeDisk(t, raw, "gpt", []part{{sizeMiB: 40, typ: "U", fs: makeFAT(t, src, 40, 32, "DATA")}})
		run(t, "qemu-img", "convert", "-O", "qcow2", raw, filepath.Join(lib, name))
	}
	t.Setenv("OFFVM_IDLE_CLOSE", "1s")
	mnt := mountLib(t, lib)
	for _, name := range imgs {
		if _, err := os.ReadFile(filepath.Join(mnt, name, "info.json")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(filepath.Join(mnt, name, "p1", "a.bin")); err != nil {
			t.Fatal(err)
		}
		if qemuCanOpen(filepath.Join(lib, name)) {
			t.Fatalf("qemu opened %s while the mount holds it", name)
		}
	}
	must(t, os.WriteFile(filepath.Join(mnt, "two.qcow2", "p1", "new.txt"), []byte("kept while idle\n"), 0o644))
	if !waitFor(15*time.Second, func() bool { return qemuCanOpen(filepath.Join(lib, "one.qcow2")) }) {
		t.Fatal("an idle image the mount only read was never closed")
	}
	if qemuCanOpen(filepath.Join(lib, "two.qcow2")) {
		t.Fatal("an image holding changes was closed")
	}
	// the next access opens it again
	if b, err := os.ReadFile(filepath.Join(mnt, "one.qcow2", "p1", "a.bin")); err != nil || len(b) != 70000 {
		t.Fatalf("reading again after the idle close: %d bytes, %v", len(b), err)
	}
	if qemuCanOpen(filepath.Join(lib, "one.qcow2")) {
		t.Fatal("the image was not opened again (its lock is not held)")
	}
	mustOffvm(t, "unmount", mnt)
	run(t, "qemu-img", "check", filepath.Join(lib, "two.qcow2"))
	out := filepath.Join(t.TempDir(), "two.raw")
	run(t, "qemu-img", "convert", "-O", "raw", filepath.Join(lib, "two.qcow2"), out)
	part := extractPart(t, out, partOffsets(t, out)[0], 40)
	if got := run(t, "mtype", "-i", part, "::/new.txt"); got != "kept while idle\n" {
		t.Fatalf("mtype new.txt: %q", got)
	}
	run(t, "fsck.fat", "-n", part)
}
