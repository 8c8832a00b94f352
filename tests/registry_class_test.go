package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// regfexportClass is the class name libregf's regfexport prints for key.
func regfexportClass(t *testing.T, hive, key string) string {
	t.Helper()
	out, err := exec.Command("regfexport", "-K", key, hive).CombinedOutput()
	if err != nil {
		t.Fatalf("regfexport -K %s: %v\n%s", key, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if c, ok := strings.CutPrefix(l, "Class name: "); ok {
			return c
		}
		if strings.HasPrefix(l, "Value: ") || strings.HasPrefix(l, "Sub key") {
			break
		}
	}
	return ""
}

// TestRegistryClassNames: the LSA keys' class names (the boot key) of a
// real Windows 7 SYSTEM hive read as user.reg.class, as regfexport prints
// them; a class set with setxattr is in the committed hive, as regfexport
// reads it from the volume (ntfscat), and the LSA classes are kept.
func TestRegistryClassNames(t *testing.T) {
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	testutil.RequireTool(t, "regfexport", "libregf-utils")
	sys := corpusHive(t, "regipy/SYSTEM.xz")
	lib := t.TempDir()
	ntfs := makeNTFS(t, 48, "W", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", sys, filepath.Join(cfg, "SYSTEM"))
	})
	img := filepath.Join(lib, "win.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 48, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	mnt := mountLib(t, lib)
	lsa := filepath.Join(mnt, "win.img", "registry", "HKLM", "SYSTEM", "ControlSet001", "Control", "Lsa")
	lsaKeys := []string{"JD", "Skew1", "GBG", "Data"}
	want := map[string]string{}
	for _, k := range lsaKeys {
		want[k] = regfexportClass(t, sys, `ControlSet001\Control\Lsa\`+k)
		if want[k] == "" {
			t.Fatalf("regfexport shows no class for Lsa\\%s", k)
		}
		if got := xattr(t, filepath.Join(lsa, k), "user.reg.class"); got != want[k] {
			t.Errorf("user.reg.class of Lsa/%s: %q, regfexport says %q", k, got, want[k])
		}
	}
	buf := make([]byte, 256)
	n, err := syscall.Listxattr(filepath.Join(lsa, "JD"), buf)
	if err != nil || !strings.Contains(string(buf[:n]), "user.reg.class") {
		t.Errorf("listxattr of Lsa/JD: %q, %v", buf[:n], err)
	}
	if _, err := syscall.Getxattr(lsa, "user.reg.class", buf); err != syscall.ENODATA {
		t.Errorf("getxattr of a key without a class: %v, want ENODATA", err)
	}
	must(t, syscall.Setxattr(lsa, "user.reg.class", []byte("offvm ✓"), 0))
	if got := xattr(t, lsa, "user.reg.class"); got != "offvm ✓" {
		t.Errorf("class after setxattr: %q", got)
	}
	mustOffvm(t, "unmount", mnt)
	written := ntfsCat(t, img, 1, "/Windows/System32/config/SYSTEM")
	if got := regfexportClass(t, written, `ControlSet001\Control\Lsa`); got != "offvm ✓" {
		t.Errorf("committed hive: class of Lsa is %q in regfexport", got)
	}
	for _, k := range lsaKeys {
		if got := regfexportClass(t, written, `ControlSet001\Control\Lsa\`+k); got != want[k] {
			t.Errorf("committed hive: class of Lsa\\%s is %q, was %q", k, got, want[k])
		}
	}
}
