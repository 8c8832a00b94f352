package patcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseWinPath: a delete entry never panics, and what it accepts
// stays on its volume with names the volume can hold.
func FuzzParseWinPath(f *testing.F) {
	for _, s := range []string{`C:\Program Files\Contoso\old.dll`, `p1:/etc/x`, `C:\..\x`, `c:/a/./b`, `C:`, `p01:/x`, "C:\\a\x00b", `Z:\CON`, `C:\a \b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseWinPath(s)
		if err != nil {
			return
		}
		if len(tg.Path) == 0 {
			t.Fatalf("%q: accepted with no path", s)
		}
		for _, p := range tg.Path {
			if p == ".." || p == "." || strings.ContainsAny(p, `/\`) {
				t.Fatalf("%q: accepted component %q", s, p)
			}
			if tg.Drive != "" && winName(p) != "" {
				t.Fatalf("%q: accepted %q that Windows cannot hold", s, p)
			}
		}
	})
}

// FuzzManifest: any patch.toml and .reg file either loads or is refused
// with ErrBundle; none panics.
func FuzzManifest(f *testing.F) {
	f.Add(goodTOML, goodReg)
	f.Add("id = \"x\"\n[applies]\nmin_build = -1\n", "REGEDIT4\n[HKLM\\SOFTWARE\\a]\n@=hex:00\n")
	f.Add("id = 5", "")
	f.Add("id = \"x\"\ndelete = ['p9999:/a']\n[applies]\nproduct = \"[\"\n", "Windows Registry Editor Version 5.00\n[-HKU\\x]\n")
	f.Fuzz(func(t *testing.T, manifest, reg string) {
		dir := t.TempDir()
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.WriteFile(filepath.Join(dir, "patch.toml"), []byte(manifest), 0o644))
		must(os.MkdirAll(filepath.Join(dir, "registry"), 0o755))
		must(os.WriteFile(filepath.Join(dir, "registry", "a.reg"), []byte(reg), 0o644))
		b, err := LoadBundle(dir)
		if err != nil {
			if !errors.Is(err, ErrBundle) {
				t.Fatalf("error without ErrBundle: %v", err)
			}
			return
		}
		if !idPattern.MatchString(b.ID) {
			t.Fatalf("accepted id %q", b.ID)
		}
	})
}
