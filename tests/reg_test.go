package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
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

// TestRegImport merges a .reg file (UTF-16LE with BOM, as regedit writes
// it) into an image without a mount, as one commit; hivex reads the result.
func TestRegImport(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeWindowsImage(t, img)
	before := sumFile(t, img)
	text := "Windows Registry Editor Version 5.00\r\n\r\n" +
		"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent\\Settings]\r\n\"Level\"=dword:00000003\r\n\"Name\"=\"Ünïcode ✓\"\r\n\r\n" +
		"[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Spooler]\r\n\"Start\"=dword:00000004\r\n\"Blob\"=-\r\n\r\n" +
		"[-HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Odd/Name]\r\n"
	regFile := filepath.Join(t.TempDir(), "change.reg")
	must(t, os.WriteFile(regFile, utf16le(text), 0o644))
	out := mustOffvm(t, "reg", "import", img, regFile)
	if !strings.Contains(out, "imported") {
		t.Errorf("reg import printed %q", out)
	}
	system := ntfsCat(t, img, 3, "/Windows/System32/config/SYSTEM")
	software := ntfsCat(t, img, 3, "/Windows/System32/config/SOFTWARE")
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso\Agent\Settings`, "Name")); got != "Ünïcode ✓" {
		t.Errorf("Name = %q", got)
	}
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso\Agent\Settings`, "Level")); got != "3" {
		t.Errorf("Level = %q", got)
	}
	if got := strings.TrimSpace(run(t, "hivexget", system, `ControlSet001\Services\Spooler`, "Start")); got != "4" {
		t.Errorf("Start = %q", got)
	}
	spooler := run(t, "hivexregedit", "--export", system, `ControlSet001\Services\Spooler`)
	if strings.Contains(spooler, `"Blob"`) {
		t.Errorf("the deleted value is still there:\n%s", spooler)
	}
	// a file with an error changes nothing
	after := sumFile(t, img)
	bad := filepath.Join(t.TempDir(), "bad.reg")
	must(t, os.WriteFile(bad, []byte("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\X]\n\"a\"=dword:1\n[HKEY_CLASSES_ROOT\\Nope]\n\"b\"=\"c\"\n"), 0o644))
	if r := runOffvm(t, "reg", "import", img, bad); r.code != 1 || !strings.Contains(r.err, "web01.img") {
		t.Errorf("import of a bad file: exit %d, %q", r.code, r.err)
	}
	if sumFile(t, img) != after {
		t.Errorf("a failed import changed the image")
	}
	mustOffvm(t, "rollback", img)
	if sumFile(t, img) != before {
		t.Errorf("rollback after reg import did not restore the image")
	}
}

func utf16le(s string) []byte {
	b := []byte{0xFF, 0xFE}
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			b = append(b, byte((0xD800+(r>>10))&0xFF), byte((0xD800+(r>>10))>>8), byte((0xDC00+(r&0x3FF))&0xFF), byte((0xDC00+(r&0x3FF))>>8))
			continue
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// TestReadOnlyMountKeepsWritersOut: a --ro mount serves an image from the
// kernel's caches, so it holds qemu's reader lock while the image is open:
// reg import and qemu-io's writes are refused naming the holder and change
// nothing; after unmount the same import goes through.
func TestReadOnlyMountKeepsWritersOut(t *testing.T) {
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeWindowsImage(t, img)
	regFile := filepath.Join(t.TempDir(), "change.reg")
	must(t, os.WriteFile(regFile, []byte("Windows Registry Editor Version 5.00\r\n\r\n"+
		"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso]\r\n\"Level\"=dword:00000007\r\n"), 0o644))
	before := sumFile(t, img)

	mnt := mountLib(t, lib, "--ro")
	if _, err := os.ReadFile(filepath.Join(mnt, "web01.img", "info.json")); err != nil {
		t.Fatal(err) // opens the image
	}
	r := runOffvm(t, "reg", "import", img, regFile)
	if r.code == 0 || !strings.Contains(r.err, "in use") || !strings.Contains(r.err, "offvm") {
		t.Errorf("reg import under a --ro mount: exit %d, %q; want refused naming offvm", r.code, r.err)
	}
	q, err := exec.Command("qemu-io", "-f", "raw", "-c", "write 0 512", img).CombinedOutput()
	if err == nil || !strings.Contains(string(q), "lock") {
		t.Errorf("qemu-io wrote an image a --ro mount serves: %v\n%s", err, q)
	}
	if sumFile(t, img) != before {
		t.Fatal("the image changed under a --ro mount")
	}
	// readers are not kept out: reg export reads the image meanwhile
	if out := mustOffvm(t, "reg", "export", img, `HKLM\SYSTEM\Select`); !strings.Contains(out, "Current") {
		t.Errorf("reg export under a --ro mount: %q", out)
	}
	mustOffvm(t, "unmount", mnt)

	mustOffvm(t, "reg", "import", img, regFile)
	software := ntfsCat(t, img, 3, "/Windows/System32/config/SOFTWARE")
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso`, "Level")); got != "7" {
		t.Errorf("Level after unmount and import = %q", got)
	}
}
