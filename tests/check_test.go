package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckHives: `offvm check` parses a Windows guest's hives; a sound
// image is ok, an image whose SOFTWARE hive is broken (a real broken hive
// from the corpus) is reported with the hive's path and the cause, and the
// rest of the image stays browsable.
func TestCheckHives(t *testing.T) {
	lib := t.TempDir()
	good := filepath.Join(lib, "good.img")
	makeWindowsImage(t, good)
	if r := runOffvm(t, "check", good); r.code != 0 || !strings.Contains(r.out, "ok") {
		t.Errorf("check of a sound image: exit %d %q %q", r.code, r.out, r.err)
	}
	broken := corpusHive(t, "plaso/corrupt_sub_key_list.hiv")
	ntfs := makeNTFS(t, 32, "W", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", broken, filepath.Join(cfg, "SOFTWARE"))
		must(t, os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("still here"), 0o644))
	})
	bad := filepath.Join(lib, "bad.img")
	makeDisk(t, bad, "gpt", []part{{sizeMiB: 32, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	r := runOffvm(t, "check", bad)
	if r.code != 1 || !strings.Contains(r.out, "SOFTWARE") {
		t.Errorf("check of an image with a broken hive: exit %d, %q", r.code, r.out)
	}
	mnt := mountLib(t, lib, "--ro")
	if b, err := os.ReadFile(filepath.Join(mnt, "bad.img", "p1", "readme.txt")); err != nil || string(b) != "still here" {
		t.Errorf("files of the image with a broken hive: %q, %v", b, err)
	}
}
