package patcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/inspect"
)

const goodTOML = `id = "contoso-agent-1.2.4"
title = "Contoso Agent 1.2.4"
delete = ['C:\Program Files\Contoso\old.dll', 'p1:/etc/old.conf']

[applies]
os = "windows"
product = "Windows Server 2019*"
min_build = 17763
max_build = 17763
arch = "amd64"
`

const goodReg = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso]\r\n\"V\"=\"1\"\r\n"

// bundleDir writes a bundle from a map of relative path → content; a
// content starting with "->" makes a symlink to the rest.
func bundleDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], p)
		case strings.HasSuffix(rel, "/"):
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadBundle(t *testing.T) {
	b, err := LoadBundle(bundleDir(t, map[string]string{
		"patch.toml":                           goodTOML,
		"files/C/Program Files/Contoso/a.dll":  "new",
		"files/C/Program Files/Contoso/empty/": "",
		"files/p1/etc/motd":                    "hello",
		"registry/20-b.reg":                    goodReg,
		"registry/10-a.reg":                    goodReg,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "contoso-agent-1.2.4" || b.Title != "Contoso Agent 1.2.4" || *b.Applies.MinBuild != 17763 || b.Applies.Arch != "amd64" {
		t.Errorf("manifest: %+v", b)
	}
	var got []string
	for _, f := range b.Files {
		got = append(got, f.Target.String())
	}
	want := `C:\Program Files,C:\Program Files\Contoso,C:\Program Files\Contoso\a.dll,C:\Program Files\Contoso\empty,p1:/etc,p1:/etc/motd`
	if strings.Join(got, ",") != want {
		t.Errorf("files (parents first):\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	if len(b.Deletes) != 2 || b.Deletes[0].String() != `C:\Program Files\Contoso\old.dll` || b.Deletes[1].String() != "p1:/etc/old.conf" {
		t.Errorf("deletes: %v", b.Deletes)
	}
	if len(b.Registry) != 2 || b.Registry[0].Name != "10-a.reg" || len(b.Registry[0].Ops) != 2 {
		t.Errorf("registry in name order: %+v", b.Registry)
	}
}

// TestLoadBundleRefuses: everything that would leave a volume, or that
// Windows cannot hold, refuses the whole bundle.
func TestLoadBundleRefuses(t *testing.T) {
	toml := func(s string) map[string]string { return map[string]string{"patch.toml": s} }
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"patch.toml": goodTOML}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no manifest", map[string]string{"files/C/a": "x"}, "patch.toml"},
		{"manifest is a link", map[string]string{"real.toml": goodTOML, "patch.toml": "->real.toml"}, "not a regular file"},
		{"bad id", toml(`id = "../x"`), "id"},
		{"unknown key", toml("id = \"x\"\nproduct = \"y\"\n"), "unknown key"},
		{"bad os", toml("id = \"x\"\n[applies]\nos = \"beos\"\n"), "os"},
		{"bad glob", toml("id = \"x\"\n[applies]\nproduct = \"Win[\"\n"), "product"},
		{"min above max", toml("id = \"x\"\n[applies]\nmin_build = 2\nmax_build = 1\n"), "min_build"},
		{"delete ..", toml("id = \"x\"\ndelete = ['C:\\Windows\\..\\..\\x']\n"), "leaves its directory"},
		{"delete relative", toml("id = \"x\"\ndelete = ['Windows\\x']\n"), "drive"},
		{"delete no root", toml("id = \"x\"\ndelete = ['C:x']\n"), "absolute"},
		{"delete a volume", toml("id = \"x\"\ndelete = ['C:\\']\n"), "whole volume"},
		{"delete bad name", toml("id = \"x\"\ndelete = ['C:\\a\\b?']\n"), "Windows cannot hold"},
		{"bad volume dir", with(map[string]string{"files/CC/a": "x"}), "drive letter"},
		{"file as volume", with(map[string]string{"files/C": "x"}), "drive letter"},
		{"volume twice", with(map[string]string{"files/c/a": "x", "files/C/b": "y"}), "named twice"},
		{"colon", with(map[string]string{"files/C/a:b": "x"}), "Windows cannot hold"},
		{"device name", with(map[string]string{"files/C/dir/CON.txt": "x"}), "reserved device name"},
		{"trailing dot", with(map[string]string{"files/C/dir./a": "x"}), "ends in a dot"},
		{"case twins", with(map[string]string{"files/C/A.txt": "x", "files/C/a.txt": "y"}), "differ only in case"},
		{"symlink out", with(map[string]string{"files/C/etc": "->/etc"}), "links leave the bundle"},
		{"symlink file", with(map[string]string{"files/p1/x": "->../../patch.toml"}), "links leave the bundle"},
		{"files is a link", with(map[string]string{"elsewhere/C/a": "x", "files": "->elsewhere"}), "links are refused"},
		{"not a .reg", with(map[string]string{"registry/notes.txt": "x"}), "only .reg"},
		{"reg syntax", with(map[string]string{"registry/a.reg": "hello"}), "registry/a.reg"},
		{"reg HKCR", with(map[string]string{"registry/a.reg": "REGEDIT4\n\n[HKEY_CLASSES_ROOT\\x]\n"}), "HKEY_LOCAL_MACHINE and HKEY_USERS"},
		{"reg CurrentControlSet", with(map[string]string{"registry/a.reg": "REGEDIT4\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\x]\n"}), "ControlSet001"},
		{"reg link", with(map[string]string{"x.reg": goodReg, "registry/a.reg": "->../x.reg"}), "not a regular file"},
		{"updates: not a package", with(map[string]string{"updates/readme.txt": "x"}), "only regular .msu and .cab"},
		{"updates: a link", with(map[string]string{"x.msu": "x", "updates/a.msu": "->../x.msu"}), "only regular .msu and .cab"},
		{"updates for linux", map[string]string{"patch.toml": "id = \"x\"\n[applies]\nos = \"linux\"\n", "updates/a.msu": "x"}, `needs [applies] os = "windows"`},
		// package patcher alone has no stager (package updates registers it)
		{"updates without a stager", with(map[string]string{"updates/a.msu": "x"}), "cannot stage update packages"},
		{"delete and bring", with(map[string]string{"files/C/Program Files/Contoso/old.dll/x": "y"}), "deleted and also brought"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadBundle(bundleDir(t, c.files))
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("LoadBundle: %v; want ErrBundle mentioning %q", err, c.want)
			}
		})
	}
}

func TestApplicable(t *testing.T) {
	n := func(i int) *int { return &i }
	s := func(v string) *string { return &v }
	server := &inspect.OS{Family: "windows", ProductName: s("Windows Server 2019 Standard"), Build: n(17763), Arch: s("amd64")}
	pro := &inspect.OS{Family: "windows", ProductName: s("Windows 10 Pro"), Build: n(19045), Arch: s("amd64")}
	debian := &inspect.OS{Family: "linux", ProductName: s("Debian GNU/Linux 12 (bookworm)")}
	cases := []struct {
		rules Rules
		os    *inspect.OS
		want  string
	}{
		{Rules{}, nil, ""},
		{Rules{OS: "windows"}, nil, "no operating system found in the image"},
		{Rules{OS: "windows", Product: "Windows Server 2019*"}, server, ""},
		{Rules{Product: "windows server 2019*"}, server, ""},
		{Rules{Product: "Windows Server 2019*"}, pro, "product Windows 10 Pro does not match Windows Server 2019*"},
		{Rules{OS: "Linux"}, server, "os windows is not linux"},
		{Rules{OS: "linux", Product: "Debian*"}, debian, ""},
		{Rules{MinBuild: n(17763), MaxBuild: n(17763)}, server, ""},
		{Rules{MinBuild: n(19041)}, server, "build 17763 is below min_build 19041"},
		{Rules{MaxBuild: n(17763)}, pro, "build 19045 is above max_build 17763"},
		{Rules{MinBuild: n(1)}, debian, "the build number is unknown; the bundle names a build range"},
		{Rules{Arch: "AMD64"}, server, ""},
		{Rules{Arch: "arm64"}, server, "arch amd64 is not arm64"},
		{Rules{Arch: "amd64"}, debian, "the architecture is unknown; the bundle wants amd64"},
	}
	for _, c := range cases {
		if got := c.rules.Applicable(c.os); got != c.want {
			t.Errorf("%+v on %v: %q, want %q", c.rules, c.os, got, c.want)
		}
	}
}

func TestResultLine(t *testing.T) {
	cases := []struct {
		r    Result
		want string
	}{
		{Result{Image: "a.vhdx", Status: Applied, When: "2026-11-21T10:00:00Z"}, "a.vhdx: applied (2026-11-21T10:00:00Z)"},
		{Result{Image: "a.vhdx", Status: AlreadyApplied}, "a.vhdx: already applied"},
		{Result{Image: "a.vhdx", Status: NotApplicable, Reason: "os linux is not windows"}, "a.vhdx: not applicable: os linux is not windows"},
		{Result{Image: "a.vhdx", Status: Failed, Reason: "cannot write: x"}, "a.vhdx: failed: cannot write: x"},
		{Result{Image: "a.vhdx", Status: NotApplied}, "a.vhdx: not applied"},
		{Result{Image: "a.vhdx", Status: Applied, When: "2026-11-21T10:00:00Z", Changes: []Change{{Action: "stage", Path: "KB1"}, {Action: "note", Path: "reboot pending:", Detail: "X is set"}}},
			"a.vhdx: applied (2026-11-21T10:00:00Z); reboot pending: X is set"},
		{Result{Image: "a.vhdx", Status: Failed, Reason: "r", Changes: []Change{{Action: "note", Path: "reboot pending:", Detail: "X"}}}, "a.vhdx: failed: r"},
	}
	for _, c := range cases {
		if got := c.r.Line(); got != c.want {
			t.Errorf("Line() = %q, want %q", got, c.want)
		}
	}
}
