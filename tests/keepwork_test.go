package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// tmpfsLib mounts a tmpfs of sizeMiB as a library directory; the test
// ends with it unmounted.
func tmpfsLib(t *testing.T, sizeMiB int) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	run(t, "mount", "-t", "tmpfs", "-o", "size="+strconvItoa(int64(sizeMiB))+"M", "tmpfs", dir)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestFullDiskKeepsWork: a library on a file system with too little room
// for the commit. unmount refuses before writing anything, names the
// space it needs, and leaves the tree mounted with every change; once the
// file system is enlarged the same unmount commits, and ntfs-3g's tools
// and qemu-img find the change whole.
func TestFullDiskKeepsWork(t *testing.T) {
	testutil.RequireTool(t, "ntfscat", "ntfs-3g")
	lib := tmpfsLib(t, 40)
	ntfs := makeNTFS(t, 120, "DATA", func(dir string) {
		must(t, os.WriteFile(filepath.Join(dir, "old.txt"), []byte("old\n"), 0o644))
	})
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 120, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	img := filepath.Join(lib, "vm.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	before := sumFile(t, img)

	mnt := mountLib(t, lib)
	payload := bytes.Repeat([]byte("offvm keeps the user's work. "), 60<<20/29) // ~60 MB, more than is free
	dst := filepath.Join(mnt, "vm.qcow2", "p1", "big.bin")
	must(t, os.WriteFile(dst, payload, 0o644))

	r := runOffvm(t, "unmount", mnt)
	if r.code != 1 {
		t.Fatalf("unmount on a full library: exit %d, want 1\n%s%s", r.code, r.out, r.err)
	}
	msg := r.out + r.err
	t.Logf("unmount said: %s", msg)
	for _, want := range []string{"needs", "free in " + lib, "stays mounted"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failure does not say %q", want)
		}
	}
	if !isMounted(mnt) {
		t.Fatal("a failed commit took the mount (and the work) with it")
	}
	if sumFile(t, img) != before {
		t.Fatal("a refused commit changed the image")
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("after the failed unmount the file reads %d bytes (%v), want the %d written", len(got), err, len(payload))
	}
	// the tree is writable again: more work on top
	must(t, os.WriteFile(filepath.Join(mnt, "vm.qcow2", "p1", "after.txt"), []byte("written after the failure\n"), 0o644))

	run(t, "mount", "-o", "remount,size=400M", lib)
	mustOffvm(t, "unmount", mnt)
	if isMounted(mnt) {
		t.Fatal("still mounted after a successful unmount")
	}
	run(t, "qemu-img", "check", img)
	out := filepath.Join(t.TempDir(), "out.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, out)
	part := extractPart(t, out, partOffsets(t, out)[0], 120)
	for name, want := range map[string][]byte{"big.bin": payload, "after.txt": []byte("written after the failure\n"), "old.txt": []byte("old\n")} {
		b, err := exec.Command("ntfscat", part, name).Output()
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("ntfscat %s: %d bytes (%v), want %d", name, len(b), err, len(want))
		}
	}
	run(t, "ntfsresize", "--info", "--force", "--no-progress-bar", part)
}

// TestExt2VisitUnmount: reading an ext2 volume (which offvm cannot
// write) through the mount never makes unmount fail.
func TestExt2VisitUnmount(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext2", "e2fsprogs")
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o644))
	fsimg := filepath.Join(t.TempDir(), "ext2.img")
	sparseFile(t, fsimg, 16*mib)
	run(t, "mkfs.ext2", "-q", "-F", "-d", src, fsimg)
	lib := t.TempDir()
	img := filepath.Join(lib, "old.img")
	makeDisk(t, img, "dos", []part{{sizeMiB: 16, typ: "L", fs: fsimg}})
	before := sumFile(t, img)
	mnt := mountLib(t, lib)
	b, err := os.ReadFile(filepath.Join(mnt, "old.img", "p1", "hello.txt"))
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("read through the mount: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "old.img", "p1", "new.txt"), []byte("x"), 0o644); err == nil {
		t.Fatal("a write to ext2 was accepted")
	}
	mustOffvm(t, "unmount", mnt)
	if sumFile(t, img) != before {
		t.Fatal("a read-only visit changed the image")
	}
}

// TestIOErrorKeepsWork: an I/O error half-way through applying a commit
// (injected once, as a transient fault) undoes what was applied, leaves
// the tree mounted with every change, and the next unmount commits them;
// qemu-img, fsck.fat and mtools check both states.
func TestIOErrorKeepsWork(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "old.bin"), 100000)
	lib := t.TempDir()
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 40, typ: "U", fs: makeFAT(t, src, 40, 32, "DATA")}})
	img := filepath.Join(lib, "vm.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	before := sumFile(t, img)
	t.Setenv("OFFVM_FAULT", "apply-error")
	mnt := mountLib(t, lib)
	p1 := filepath.Join(mnt, "vm.qcow2", "p1")
	payload := bytes.Repeat([]byte("io error test "), 50000)
	must(t, os.WriteFile(filepath.Join(p1, "new.bin"), payload, 0o644))
	must(t, os.Remove(filepath.Join(p1, "old.bin")))

	r := runOffvm(t, "unmount", mnt)
	if r.code != 1 || !strings.Contains(r.err+r.out, "input/output error") || !strings.Contains(r.err+r.out, "stays mounted") {
		t.Fatalf("unmount with an I/O error: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if sumFile(t, img) != before {
		t.Fatal("the failed commit was not undone")
	}
	run(t, "qemu-img", "check", "-U", img) // -U: the mount still holds it
	if got, err := os.ReadFile(filepath.Join(p1, "new.bin")); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("after the failure new.bin reads %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(p1, "old.bin")); !os.IsNotExist(err) {
		t.Fatalf("after the failure the removal of old.bin is lost: %v", err)
	}
	mustOffvm(t, "unmount", mnt)
	run(t, "qemu-img", "check", img)
	out := filepath.Join(t.TempDir(), "out.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, out)
	part := extractPart(t, out, partOffsets(t, out)[0], 40)
	run(t, "fsck.fat", "-n", part)
	if got := run(t, "mtype", "-i", part, "::/new.bin"); got != string(payload) {
		t.Fatalf("mtype new.bin: %d bytes, want %d", len(got), len(payload))
	}
	if listing := run(t, "mdir", "-b", "-i", part, "::/"); strings.Contains(listing, "old.bin") {
		t.Fatalf("old.bin survived the commit: %s", listing)
	}
}
