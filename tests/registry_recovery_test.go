package tests

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestRegistryDirtyHiveReadOnly: a real dirty SYSTEM hive (regipy's
// SYSTEM_B) whose only log has a wrong base-block checksum, as issue 12
// describes. The view shows it as the primary file holds it (what
// hivexget reads from that file), every change is refused with EROFS
// (through the view and through `offvm reg import`), info.json names
// the hive, the log and the reason, and the image is never written.
func TestRegistryDirtyHiveReadOnly(t *testing.T) {
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	sys := corpusHive(t, "regipy/SYSTEM_B.xz")
	log1 := corpusHive(t, "regipy/SYSTEM_B.LOG1.xz")
	b, err := os.ReadFile(log1)
	must(t, err)
	b[100] ^= 0xFF // the log's base-block checksum no longer matches
	must(t, os.WriteFile(log1, b, 0o644))
	lib := t.TempDir()
	ntfs := makeNTFS(t, 48, "W", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", sys, filepath.Join(cfg, "SYSTEM"))
		run(t, "cp", log1, filepath.Join(cfg, "SYSTEM.LOG1"))
	})
	img := filepath.Join(lib, "win.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 48, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	before := sumFile(t, img)

	mnt := mountLib(t, lib)
	key := filepath.Join(mnt, "win.img", "registry", "HKLM", "SYSTEM", "ControlSet001", "Control", "ComputerName", "ComputerName")
	want := strings.TrimSpace(run(t, "hivexget", sys, `\ControlSet001\Control\ComputerName\ComputerName`, "ComputerName"))
	if got := strings.TrimSpace(readText(t, filepath.Join(key, "ComputerName"))); got != want {
		t.Errorf("ComputerName %q, the primary file holds %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(key, "ComputerName")); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("value mode %v, %v; want 0444", fi.Mode(), err)
	}
	for what, err := range map[string]error{
		"write":  os.WriteFile(filepath.Join(key, "ComputerName"), []byte("X\n"), 0o644),
		"mkdir":  os.Mkdir(filepath.Join(key, "New"), 0o755),
		"unlink": os.Remove(filepath.Join(key, "ComputerName")),
		"create": os.WriteFile(filepath.Join(key, "NewValue"), []byte("x\n"), 0o644),
	} {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s in the dirty hive: %v, want EROFS", what, err)
		}
	}
	var info struct {
		Problems []string `json:"problems"`
	}
	raw, err := os.ReadFile(filepath.Join(mnt, "win.img", "info.json"))
	must(t, err)
	must(t, json.Unmarshal(raw, &info))
	found := false
	for _, p := range info.Problems {
		if strings.Contains(p, "HKLM/SYSTEM") && strings.Contains(p, "SYSTEM.LOG1") && strings.Contains(p, "checksum") && strings.Contains(p, "read-only") {
			found = true
		}
	}
	if !found {
		t.Errorf("info.json problems do not name the hive, the log and the reason: %q", info.Problems)
	}
	mustOffvm(t, "unmount", mnt)

	reg := filepath.Join(t.TempDir(), "c.reg")
	must(t, os.WriteFile(reg, []byte("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]\n\"Current\"=dword:00000002\n"), 0o644))
	if r := runOffvm(t, "reg", "import", img, reg); r.code == 0 || !strings.Contains(r.err, "read-only") {
		t.Errorf("reg import into the dirty hive: exit %d, %q", r.code, r.err)
	}
	if sumFile(t, img) != before {
		t.Error("the image changed")
	}
}
