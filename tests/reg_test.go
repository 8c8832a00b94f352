package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegExport: `offvm reg export` prints exactly what hivexregedit
// --export prints for the same key of the same hive.
func TestRegExport(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeWindowsImage(t, img)
	system := makeHive(t, `HKEY_LOCAL_MACHINE\SYSTEM`, systemReg) // the same content
	for _, key := range []string{`ControlSet001\Services`, `Select`, `ControlSet001\Services\Odd/Name`} {
		want, err := exec.Command("hivexregedit", "--export", "--prefix", `HKEY_LOCAL_MACHINE\SYSTEM`, system, key).Output()
		if err != nil {
			t.Fatalf("hivexregedit --export %s: %v", key, err)
		}
		got := mustOffvm(t, "reg", "export", img, `HKLM\SYSTEM\`+key)
		if got != string(want) {
			t.Errorf("reg export %s differs from hivexregedit:\n--- offvm\n%s\n--- hivex\n%s", key, got, want)
		}
	}
	r := runOffvm(t, "reg", "export", img, `HKLM\SYSTEM\NoSuchKey`)
	if r.code != 1 || !strings.Contains(r.err, "NoSuchKey") || !strings.Contains(r.err, "web01.img") {
		t.Errorf("export of a missing key: exit %d, %q", r.code, r.err)
	}
	_ = os.Remove
}
