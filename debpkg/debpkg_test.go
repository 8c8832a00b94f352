package debpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const status = `Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4
Description: GNU C Library
 continuation: not a field

Package: less
Status: deinstall ok config-files
Architecture: amd64
Version: 590-2

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: half
Status: install reinstreq half-installed
Version: 1.0
`

func TestParseStatus(t *testing.T) {
	got := ParseStatus([]byte(status))
	for _, c := range []struct {
		pkg, arch, want string
		ok              bool
	}{
		{"libc6", "amd64", "2.36-9+deb12u4", true},
		{"tzdata", "all", "2024a-0+deb12u1", true},
		{"less", "amd64", "", false}, // only its conffiles are left
		{"half", "amd64", "", false},
		{"libc6", "i386", "", false}, // Multi-Arch: same is per architecture
	} {
		i, ok := Lookup(got, c.pkg, c.arch)
		if ok != c.ok || i.Version != c.want {
			t.Errorf("%s:%s = %q %v, want %q %v", c.pkg, c.arch, i.Version, ok, c.want, c.ok)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(status))
	f.Add([]byte("Package: x\nStatus: install ok installed\n\n\n\nPackage:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, i := range ParseStatus(b) {
			if name == "" || strings.Contains(i.Version, "\n") {
				t.Fatalf("entry %q %+v", name, i)
			}
		}
	})
}

func TestReason(t *testing.T) {
	stderr := `dpkg: warning: something harmless
dpkg: error processing archive /b/fail.deb (--install):
 installed offvm-fail package post-installation script subprocess returned error exit status 1
Errors were encountered while processing:
 /b/fail.deb
`
	want := "error processing archive /b/fail.deb (--install): installed offvm-fail package post-installation script subprocess returned error exit status 1"
	if got := reason(stderr, nil); got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

// buildDeb makes a real package with dpkg-deb.
func buildDeb(t *testing.T, dir, name, version string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name+"-"+version)
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/doc", name), 0o755)
	os.WriteFile(filepath.Join(root, "usr/share/doc", name, "README"), []byte(name+"\n"), 0o644)
	ctl := "Package: " + name + "\nVersion: " + version + "\nArchitecture: all\nMaintainer: offvm <offvm@example.org>\nDescription: test package\n"
	os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644)
	out := filepath.Join(dir, name+"_"+version+"_all.deb")
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", root, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	return out
}

func needDpkg(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func TestLoadAndPlan(t *testing.T) {
	needDpkg(t)
	b := t.TempDir()
	debs := filepath.Join(b, Dir)
	os.Mkdir(debs, 0o755)
	buildDeb(t, debs, "newpkg", "1.0")
	buildDeb(t, debs, "tzdata", "2024b-0+deb12u1")
	buildDeb(t, debs, "older", "1:1.0~rc1")
	got, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("loaded %v", got)
	}
	inst := map[string]Installed{"tzdata": {Version: "2024a-0+deb12u1"}, "older": {Version: "1:1.0"}}
	steps, err := Plan(got, inst)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"newpkg": Install, "tzdata": Upgrade, "older": Already}
	for _, s := range steps {
		if s.Action != want[s.Deb.Package] {
			t.Errorf("%s: %s, want %s", s.Deb.Package, s.Action, want[s.Deb.Package])
		}
	}
	if p := Pending(steps); len(p) != 2 {
		t.Errorf("pending %v", p)
	}
	if _, err := Load(t.TempDir()); err != nil {
		t.Errorf("bundle without debs/: %v", err)
	}
	os.WriteFile(filepath.Join(debs, "junk.deb"), []byte("not a package"), 0o644)
	if _, err := Load(b); err == nil || !strings.Contains(err.Error(), "junk.deb") {
		t.Errorf("junk.deb: %v", err)
	}
}
