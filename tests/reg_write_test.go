package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hiveFromImage copies a file out of the committed image's NTFS partition
// with ntfscat (ntfs-3g's tool, not our reader).
func ntfsCat(t *testing.T, img string, partNo int, path string) string {
	t.Helper()
	offs := partOffsets(t, img)
	vol := filepath.Join(t.TempDir(), "vol")
	run(t, "dd", "if="+img, "of="+vol, "bs=1M", "iflag=skip_bytes", "skip="+strconvItoa(offs[partNo-1]), "count=64", "status=none")
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	b, err := exec.Command("ntfscat", vol, path).Output()
	if err != nil {
		t.Fatalf("ntfscat %s: %v", path, err)
	}
	must(t, os.WriteFile(out, b, 0o644))
	return out
}

// TestRegistryWrite edits hives through the mounted view, commits, and
// reads the result back with hivex from the NTFS volume as ntfs-3g sees it.
func TestRegistryWrite(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeWindowsImage(t, img)
	mnt := mountLib(t, lib)
	reg := filepath.Join(mnt, "web01.img", "registry")
	spooler := filepath.Join(reg, "HKLM", "SYSTEM", "CurrentControlSet", "Services", "Spooler")
	must(t, os.WriteFile(filepath.Join(spooler, "Start"), []byte("4\n"), 0o644))
	if err := os.WriteFile(filepath.Join(spooler, "Start"), []byte("4294967296\n"), 0o644); err == nil {
		t.Errorf("an out-of-range DWORD was accepted")
	}
	nk := filepath.Join(reg, "HKLM", "SOFTWARE", "Contoso", "Agent")
	must(t, os.MkdirAll(nk, 0o755))
	must(t, os.WriteFile(filepath.Join(nk, "Version"), []byte("1.2.4\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(nk, "Port"), nil, 0o644))
	run(t, "setfattr", "-n", "user.reg.type", "-v", "REG_DWORD", filepath.Join(nk, "Port"))
	must(t, os.WriteFile(filepath.Join(nk, "Port"), []byte("0x1f90"), 0o644))
	must(t, os.WriteFile(filepath.Join(nk, "@"), []byte("default\n"), 0o644))
	must(t, os.RemoveAll(filepath.Join(reg, "HKLM", "SYSTEM", "ControlSet001", "Services", "Odd%2FName")))
	// the hive file cannot be written while the view holds changes
	cfg := filepath.Join(mnt, "web01.img", "p3", "Windows", "System32", "config", "SYSTEM")
	if f, err := os.OpenFile(cfg, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Errorf("opening the SYSTEM hive file for writing succeeded while the view has changes; want EBUSY")
	} else if !strings.Contains(err.Error(), "busy") {
		t.Errorf("opening the hive file: %v, want EBUSY", err)
	}
	out := mustOffvm(t, "unmount", mnt)
	if !strings.Contains(out, "committed") {
		t.Errorf("unmount: %q", out)
	}

	system := ntfsCat(t, img, 3, "/Windows/System32/config/SYSTEM")
	software := ntfsCat(t, img, 3, "/Windows/System32/config/SOFTWARE")
	if got := strings.TrimSpace(run(t, "hivexget", system, `ControlSet001\Services\Spooler`, "Start")); got != "4" {
		t.Errorf("hivexget Start = %q, want 4", got)
	}
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso\Agent`, "Version")); got != "1.2.4" {
		t.Errorf("hivexget Version = %q", got)
	}
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso\Agent`, "Port")); got != "8080" {
		t.Errorf("hivexget Port = %q, want 8080", got)
	}
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso\Agent`, "@")); got != "default" {
		t.Errorf("hivexget @ = %q", got)
	}
	exp := run(t, "hivexregedit", "--export", system, `ControlSet001\Services`)
	if strings.Contains(exp, "Odd/Name") {
		t.Errorf("the deleted key is still in the hive")
	}
	if got := strings.TrimSpace(run(t, "hivexget", system, `ControlSet001\Control\ComputerName\ComputerName`, "ComputerName")); got != "WEB01" {
		t.Errorf("an untouched value changed: %q", got)
	}
	if o, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", extractPart(t, img, partOffsets(t, img)[2], 64)).CombinedOutput(); err != nil {
		t.Errorf("ntfsresize --info after the commit: %v\n%s", err, o)
	}
}
