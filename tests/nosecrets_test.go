package tests

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestNoSecrets: with --no-secrets, SAM and SECURITY are out of
// registry/, and reading them (or their logs, or the raw disk) through
// the tree is refused with EACCES; info.json lists them as hidden.
// Without it, the same files read.
func TestNoSecrets(t *testing.T) {
	system := makeHive(t, `HKEY_LOCAL_MACHINE\SYSTEM`, systemReg)
	sam := makeHive(t, `HKEY_LOCAL_MACHINE\SAM`, "[HKEY_LOCAL_MACHINE\\SAM\\SAM\\Domains]\n\"F\"=hex:01,02\n")
	security := makeHive(t, `HKEY_LOCAL_MACHINE\SECURITY`, "[HKEY_LOCAL_MACHINE\\SECURITY\\Policy]\n\"Secret\"=\"lsa\"\n")
	ntfs := makeNTFS(t, 32, "Windows", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", system, filepath.Join(cfg, "SYSTEM"))
		run(t, "cp", sam, filepath.Join(cfg, "SAM"))
		run(t, "cp", security, filepath.Join(cfg, "SECURITY"))
		must(t, os.WriteFile(filepath.Join(cfg, "SAM.LOG1"), []byte("log"), 0o644))
	})
	lib := t.TempDir()
	makeDisk(t, filepath.Join(lib, "win.img"), "gpt", []part{{sizeMiB: 32, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	cfg := filepath.Join("win.img", "p1", "Windows", "System32", "config")
	refused := []string{filepath.Join(cfg, "SAM"), filepath.Join(cfg, "security"), filepath.Join(cfg, "SAM.LOG1"), filepath.Join("win.img", "disk")}

	open := mountLib(t, lib)
	for _, p := range refused {
		if _, err := os.ReadFile(filepath.Join(open, p)); err != nil {
			t.Errorf("without --no-secrets, %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(open, "win.img", "registry", "HKLM", "SAM")); err != nil {
		t.Errorf("without --no-secrets, registry/HKLM/SAM: %v", err)
	}

	// read-only too: the kernel opens without asking there
	// (internal/noopen), reads are refused
	ro := mountLib(t, lib, "--ro", "--no-secrets")
	mnt := mountLib(t, lib, "--no-secrets")
	for _, m := range []string{ro, mnt} {
		for _, p := range refused {
			_, err := os.ReadFile(filepath.Join(m, p))
			if !errors.Is(err, syscall.EACCES) {
				t.Errorf("with --no-secrets (%s), reading %s: %v, want EACCES", m, p, err)
			}
		}
	}
	for _, h := range []string{"SAM", "SECURITY"} {
		if _, err := os.Stat(filepath.Join(mnt, "win.img", "registry", "HKLM", h)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("with --no-secrets, registry/HKLM/%s: %v, want absent", h, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(mnt, cfg, "SYSTEM")); err != nil || len(b) == 0 {
		t.Errorf("with --no-secrets, SYSTEM must still read: %d bytes, %v", len(b), err)
	}
	var info struct {
		Hidden []string `json:"hidden"`
	}
	b, err := os.ReadFile(filepath.Join(mnt, "win.img", "info.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &info))
	for _, want := range []string{"disk", "p1/Windows/System32/config/SAM", "p1/Windows/System32/config/SECURITY", "p1/Windows/System32/config/SAM.LOG1"} {
		if !slices.Contains(info.Hidden, want) {
			t.Errorf("info.json hidden %v lacks %s", info.Hidden, want)
		}
	}
}
