package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMissingCapabilities: what an engine cannot do is answered by the
// FUSE tree in one place with the errno Linux's own drivers give — links
// on FAT are EPERM (as vfat), extended attributes on ext4 ENOTSUP (the
// writer does not store them yet; cp -a and rsync -X pass over ENOTSUP) —
// and nothing of the refused operation reaches the image.
func TestMissingCapabilities(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), 100)
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{
		{sizeMiB: 48, typ: "U", fs: makeFAT(t, src, 48, 32, "DATA")},
		{sizeMiB: 32, typ: "L", fs: makeExt4(t, src, 32, "root")},
	})
	lib := t.TempDir()
	must(t, os.Rename(raw, filepath.Join(lib, "d.raw")))
	mnt := mountLib(t, lib)
	fat, ext := filepath.Join(mnt, "d.raw", "p1"), filepath.Join(mnt, "d.raw", "p2")
	cases := []struct {
		what string
		err  error
		want syscall.Errno
	}{
		{"hard link on FAT", os.Link(filepath.Join(fat, "a.txt"), filepath.Join(fat, "b.txt")), syscall.EPERM},
		{"symlink on FAT", os.Symlink("a.txt", filepath.Join(fat, "c.txt")), syscall.EPERM},
		{"setxattr on ext4", unix.Setxattr(filepath.Join(ext, "a.txt"), "user.x", []byte("1"), 0), syscall.ENOTSUP},
		{"removexattr on ext4", unix.Removexattr(filepath.Join(ext, "a.txt"), "user.x"), syscall.ENOTSUP},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
	// The volumes stay writable for what they can do.
	must(t, os.WriteFile(filepath.Join(fat, "ok.txt"), []byte("fat"), 0o644))
	must(t, os.Link(filepath.Join(ext, "a.txt"), filepath.Join(ext, "hard.txt")))
	for _, p := range []string{filepath.Join(fat, "b.txt"), filepath.Join(fat, "c.txt")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a refused link: %v", p, err)
		}
	}
	mustOffvm(t, "unmount", mnt)
	img := filepath.Join(lib, "d.raw")
	offs := partOffsets(t, img)
	fpart := extractPart(t, img, offs[0], 48)
	if out := run(t, "fsck.fat", "-n", fpart); out == "" {
		t.Error("fsck.fat printed nothing")
	}
	if got := run(t, "mtype", "-i", fpart, "::/ok.txt"); got != "fat" {
		t.Errorf("mtype ::/ok.txt = %q", got)
	}
	for _, name := range []string{"::/b.txt", "::/c.txt"} {
		if out, err := exec.Command("mtype", "-i", fpart, name).CombinedOutput(); err == nil {
			t.Errorf("mtype %s found a refused link: %s", name, out)
		}
	}
	epart := extractPart(t, img, offs[1], 32)
	run(t, "e2fsck", "-fn", epart)
	if st := run(t, "debugfs", "-R", "stat /a.txt", epart); !strings.Contains(st, "Links: 2") {
		t.Errorf("debugfs stat /a.txt after the link:\n%s", st)
	}
}
