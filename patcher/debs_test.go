package patcher

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/inspect"
)

func TestDistributionRules(t *testing.T) {
	s := func(v string) *string { return &v }
	debian := &inspect.OS{Family: "linux", Distribution: s("debian"), Version: s("12")}
	ubuntu := &inspect.OS{Family: "linux", Distribution: s("ubuntu"), Version: s("22.04")}
	bare := &inspect.OS{Family: "linux"}
	for _, c := range []struct {
		rules Rules
		os    *inspect.OS
		want  string
	}{
		{Rules{OS: "linux", Distribution: "Debian", MinVersion: "12"}, debian, ""},
		{Rules{Distribution: "debian"}, ubuntu, "distribution ubuntu is not debian"},
		{Rules{MinVersion: "13"}, debian, "version 12 is below min_version 13"},
		{Rules{MinVersion: "22.04"}, ubuntu, ""},
		{Rules{MinVersion: "22.10"}, ubuntu, "version 22.04 is below min_version 22.10"},
		{Rules{MinVersion: "9.3"}, debian, ""}, // 12 > 9 as numbers, not as text
		{Rules{Distribution: "debian"}, bare, "the distribution is unknown; the bundle wants debian"},
		{Rules{MinVersion: "1"}, bare, "the version is unknown; the bundle wants at least 1"},
	} {
		if got := c.rules.Applicable(c.os); got != c.want {
			t.Errorf("%+v on %+v: %q, want %q", c.rules, c.os, got, c.want)
		}
	}
}

// debs/ belongs only to bundles for Linux; a file there that is not a
// Debian package refuses the bundle.
func TestDebBundleRefusals(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	pkg := t.TempDir()
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte("Package: a\nVersion: 1\nArchitecture: all\nMaintainer: m <m@example.org>\nDescription: d\n"), 0o644)
	deb := filepath.Join(t.TempDir(), "a.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", pkg, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	real, _ := os.ReadFile(deb)
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"not linux", map[string]string{"patch.toml": "id = \"x\"\n[applies]\nos = \"windows\"\n", "debs/a.deb": string(real)}, `needs [applies] os = "linux"`},
		{"junk", map[string]string{"patch.toml": "id = \"x\"\n[applies]\nos = \"linux\"\n", "debs/a.deb": "junk"}, "not a readable Debian package"},
		{"not a deb", map[string]string{"patch.toml": "id = \"x\"\n[applies]\nos = \"linux\"\n", "debs/readme.txt": "x"}, "only regular .deb files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadBundle(bundleDir(t, c.files))
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("LoadBundle: %v; want ErrBundle mentioning %q", err, c.want)
			}
		})
	}
}
