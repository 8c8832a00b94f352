package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fatDisk makes a GPT disk whose one partition is a FAT32 volume holding
// src, and returns the image and the partition's byte offset.
func fatDisk(t *testing.T, lib, name string, src string) (string, int64) {
	t.Helper()
	fat := makeFAT(t, src, 48, 32, "DATA")
	img := filepath.Join(lib, name)
	makeDisk(t, img, "gpt", []part{{sizeMiB: 48, typ: "U", fs: fat}})
	return img, partOffsets(t, img)[0]
}

// extractPart copies a partition out of a raw disk so the real tools can
// check it on its own.
func extractPart(t *testing.T, img string, off int64, sizeMiB int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "part.img")
	run(t, "dd", "if="+img, "of="+out, "bs=512", "skip="+strconvItoa(off/512), "count="+strconvItoa(int64(sizeMiB)*2048), "status=none")
	return out
}

// TestCommitDiscardRollback: changes through the mount reach the image only
// at unmount, as one commit that fsck.fat and mtools accept; --discard and
// --ro leave the image byte-identical; rollback restores it byte for byte.
func TestCommitDiscardRollback(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "keep.txt"), 100)
	writeFile(t, filepath.Join(src, "change.bin"), 50000)
	writeFile(t, filepath.Join(src, "gone.txt"), 10)
	lib := t.TempDir()
	img, off := fatDisk(t, lib, "vm.img", src)
	orig := sumFile(t, img)

	edit := func(mnt string) {
		p := filepath.Join(mnt, "vm.img", "p1")
		must(t, os.WriteFile(filepath.Join(p, "new file.txt"), []byte("hello from offvm\n"), 0o644))
		must(t, os.MkdirAll(filepath.Join(p, "Program Files", "Contoso"), 0o755))
		must(t, os.WriteFile(filepath.Join(p, "Program Files", "Contoso", "agent.dll"), make([]byte, 300000), 0o644))
		must(t, os.Remove(filepath.Join(p, "gone.txt")))
		f, err := os.OpenFile(filepath.Join(p, "change.bin"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		f.Write([]byte("appended"))
		f.Close()
		must(t, os.Rename(filepath.Join(p, "keep.txt"), filepath.Join(p, "Program Files", "kept.txt")))
		if sumFile(t, img) != orig {
			t.Fatalf("the image changed before unmount")
		}
	}

	// --discard drops everything
	mnt := mountLib(t, lib)
	edit(mnt)
	mustOffvm(t, "unmount", "--discard", mnt)
	if sumFile(t, img) != orig {
		t.Fatalf("unmount --discard changed the image")
	}

	// --ro refuses writes with EROFS and writes nothing
	mnt = mountLib(t, lib, "--ro")
	err := os.WriteFile(filepath.Join(mnt, "vm.img", "p1", "x"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write under --ro: %v, want EROFS", err)
	}
	mustOffvm(t, "unmount", mnt)
	if sumFile(t, img) != orig {
		t.Fatalf("a --ro mount changed the image")
	}

	// a real commit
	mnt = mountLib(t, lib)
	edit(mnt)
	out := mustOffvm(t, "unmount", mnt)
	if !strings.Contains(out, "committed") || !strings.Contains(out, "vm.img") {
		t.Errorf("unmount printed %q: want one line naming the committed image", out)
	}
	part := extractPart(t, img, off, 48)
	if o, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n after commit: %v\n%s", err, o)
	}
	if got := run(t, "mtype", "-i", part, "::/new file.txt"); got != "hello from offvm\n" {
		t.Errorf("mtype new file.txt: %q", got)
	}
	listing := run(t, "mdir", "-/", "-b", "-i", part, "::/")
	for _, want := range []string{"::/Program Files/Contoso/agent.dll", "::/Program Files/kept.txt", "::/change.bin"} {
		if !strings.Contains(listing, want) {
			t.Errorf("mdir lacks %s:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "gone.txt") || strings.Contains(listing, "::/keep.txt") {
		t.Errorf("deleted or renamed names still listed:\n%s", listing)
	}
	if got := run(t, "mtype", "-i", part, "::/change.bin"); !strings.HasSuffix(got, "appended") || len(got) != 50008 {
		t.Errorf("change.bin: %d bytes, tail %q", len(got), got[max(0, len(got)-8):])
	}

	// rollback restores the bytes
	mustOffvm(t, "rollback", img)
	if sumFile(t, img) != orig {
		t.Errorf("rollback did not restore the image byte for byte")
	}
	if r := runOffvm(t, "rollback", img); r.code != 1 || !strings.Contains(r.err, "vm.img") {
		t.Errorf("a second rollback: exit %d, %q; want 1 naming the image", r.code, r.err)
	}
	if r := runOffvm(t, "check", img); r.code != 0 || !strings.Contains(r.out, "ok") {
		t.Errorf("check after rollback: exit %d %q %q", r.code, r.out, r.err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
