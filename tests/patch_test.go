package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Contents of the Contoso files before and after the patch.
var (
	agentOld = bytes.Repeat([]byte("agent 1.2.3 "), 500)
	agentNew = bytes.Repeat([]byte("agent 1.2.4!"), 700)
	readme   = []byte("Contoso Agent\r\nsee https://contoso.example\r\n")
)

// makePatchImage is makeWindowsImage's layout with a Contoso install on
// C: (an old DLL, a readme, a file to delete), made by ntfs-3g.
func makePatchImage(t *testing.T, path string) {
	t.Helper()
	system := makeHive(t, `HKEY_LOCAL_MACHINE\SYSTEM`, systemReg)
	software := makeHive(t, `HKEY_LOCAL_MACHINE\SOFTWARE`, softwareReg)
	efiSrc := t.TempDir()
	writeFile(t, filepath.Join(efiSrc, "EFI", "Boot", "bootx64.efi"), 4000)
	fat := makeFAT(t, efiSrc, 40, 32, "SYSTEM")
	ntfs := makeNTFS(t, 64, "Windows", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", system, filepath.Join(cfg, "SYSTEM"))
		run(t, "cp", software, filepath.Join(cfg, "SOFTWARE"))
		must(t, os.WriteFile(filepath.Join(cfg, "SYSTEM.LOG1"), nil, 0o644))
		app := filepath.Join(dir, "Program Files", "Contoso")
		must(t, os.MkdirAll(app, 0o755))
		must(t, os.WriteFile(filepath.Join(app, "agent.dll"), agentOld, 0o644))
		must(t, os.WriteFile(filepath.Join(app, "readme.txt"), readme, 0o644))
		must(t, os.WriteFile(filepath.Join(app, "old.dll"), []byte("obsolete"), 0o644))
	})
	makeDisk(t, path, "gpt", []part{
		{sizeMiB: 40, typ: "U", fs: fat},
		{sizeMiB: 16, typ: "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"},
		{sizeMiB: 64, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs, uuid: ntfsGUID},
	})
}

const patchTOML = `id = "contoso-agent-1.2.4"
title = "Contoso Agent 1.2.4"
delete = ['C:\Program Files\Contoso\old.dll']

[applies]
os = "windows"
product = "%PRODUCT%"
min_build = 17763
arch = "amd64"
`

const patchReg = "Windows Registry Editor Version 5.00\r\n\r\n" +
	"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso\\Agent]\r\n\"Version\"=\"1.2.4\"\r\n\"Port\"=dword:00001f90\r\n\r\n" +
	"[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Spooler]\r\n\"Start\"=dword:00000002\r\n\"Blob\"=-\r\n"

// makeBundle writes a bundle: a changed file, an unchanged one, a new one,
// a new directory tree, a delete, a file for partition 1 (the EFI FAT32)
// and a UTF-16LE .reg file.
func makeBundle(t *testing.T, product string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "patch.toml"), []byte(strings.ReplaceAll(patchTOML, "%PRODUCT%", product)), 0o644))
	app := filepath.Join(dir, "files", "C", "Program Files", "Contoso")
	must(t, os.MkdirAll(filepath.Join(app, "plugins", "net"), 0o755))
	must(t, os.WriteFile(filepath.Join(app, "agent.dll"), agentNew, 0o644))
	must(t, os.WriteFile(filepath.Join(app, "readme.txt"), readme, 0o644))
	must(t, os.WriteFile(filepath.Join(app, "agent.conf"), []byte("port=8080\r\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(app, "plugins", "net", "http.dll"), []byte("http plugin"), 0o644))
	efi := filepath.Join(dir, "files", "p1", "EFI", "Contoso")
	must(t, os.MkdirAll(efi, 0o755))
	must(t, os.WriteFile(filepath.Join(efi, "agent.efi"), []byte("EFI agent"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "registry"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "registry", "10-agent.reg"), utf16le(patchReg), 0o644))
	return dir
}

// ntfsVolume copies partition 3 (the 64 MiB NTFS of makePatchImage) out of
// the image for ntfs-3g's tools.
func ntfsVolume(t *testing.T, img string) string {
	t.Helper()
	return extractPart(t, img, partOffsets(t, img)[2], 64)
}

func ntfsFile(t *testing.T, vol, path string) ([]byte, error) {
	t.Helper()
	return exec.Command("ntfscat", vol, path).Output()
}

// TestPatchApply: dry run, apply, read back with ntfs-3g and hivex, apply
// again, status, rollback.
func TestPatchApply(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makePatchImage(t, img)
	bundle := makeBundle(t, "Windows Server 2019*")
	before := sumFile(t, img)

	// --dry-run lists every change and writes nothing
	out := mustOffvm(t, "patch", "apply", "--dry-run", bundle, lib)
	t.Logf("offvm patch apply --dry-run:\n%s", out)
	for _, want := range []string{
		img + ": would apply",
		`update       C:\Program Files\Contoso\agent.dll`,
		`create       C:\Program Files\Contoso\agent.conf`,
		`mkdir        C:\Program Files\Contoso\plugins`,
		`mkdir        C:\Program Files\Contoso\plugins\net`,
		`create       C:\Program Files\Contoso\plugins\net\http.dll`,
		`mkdir        p1:/EFI/Contoso`,
		`create       p1:/EFI/Contoso/agent.efi (9 bytes)`,
		`delete       C:\Program Files\Contoso\old.dll`,
		`set          HKLM\SOFTWARE\Contoso\Agent\"Version" = REG_SZ "1.2.4"`,
		`set          HKLM\SOFTWARE\Contoso\Agent\"Port" = REG_DWORD 8080`,
		`delete-value HKLM\SYSTEM\ControlSet001\Services\Spooler\"Blob"`,
		`record       HKLM\SOFTWARE\offvm\Patches\contoso-agent-1.2.4`,
		"1 files unchanged", "2 registry values unchanged",
		`create-key   HKLM\SOFTWARE\Contoso\Agent`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "readme.txt") || strings.Contains(out, `"Start"`) {
		t.Errorf("dry run lists what is already there:\n%s", out)
	}
	if sumFile(t, img) != before {
		t.Fatalf("--dry-run changed the image")
	}
	if out := mustOffvm(t, "patch", "status", bundle, img); strings.TrimSpace(out) != img+": not applied" {
		t.Errorf("status before: %q", out)
	}

	out = mustOffvm(t, "patch", "apply", bundle, lib)
	t.Logf("offvm patch apply: %s", out)
	if !strings.HasPrefix(out, img+": applied") {
		t.Fatalf("apply printed %q", out)
	}
	vol := ntfsVolume(t, img)
	if o, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", vol).CombinedOutput(); err != nil {
		t.Errorf("ntfsresize --info after the patch: %v\n%s", err, o)
	}
	for path, want := range map[string][]byte{
		"/Program Files/Contoso/agent.dll":            agentNew,
		"/Program Files/Contoso/readme.txt":           readme,
		"/Program Files/Contoso/agent.conf":           []byte("port=8080\r\n"),
		"/Program Files/Contoso/plugins/net/http.dll": []byte("http plugin"),
	} {
		if got, err := ntfsFile(t, vol, path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("ntfscat %s: %d bytes (%v), want %d", path, len(got), err, len(want))
		}
	}
	if got, err := ntfsFile(t, vol, "/Program Files/Contoso/old.dll"); err == nil {
		t.Errorf("old.dll is still there: %q", got)
	}
	// partition 1 by number: the EFI FAT32, read back by mtools, checked by fsck.fat
	fat := extractPart(t, img, partOffsets(t, img)[0], 40)
	if got := run(t, "mtype", "-i", fat, "::/EFI/Contoso/agent.efi"); got != "EFI agent" {
		t.Errorf("mtype agent.efi = %q", got)
	}
	run(t, "fsck.fat", "-n", fat)
	software := ntfsCat(t, img, 3, "/Windows/System32/config/SOFTWARE")
	system := ntfsCat(t, img, 3, "/Windows/System32/config/SYSTEM")
	hv := func(h, key, val string) string { return strings.TrimSpace(run(t, "hivexget", h, key, val)) }
	if got := hv(software, `Contoso\Agent`, "Version"); got != "1.2.4" {
		t.Errorf("Version = %q", got)
	}
	if got := hv(software, `Contoso\Agent`, "Port"); got != "8080" {
		t.Errorf("Port = %q", got)
	}
	if got := hv(system, `ControlSet001\Services\Spooler`, "Start"); got != "2" {
		t.Errorf("Start = %q", got)
	}
	if exp := run(t, "hivexregedit", "--export", system, `ControlSet001\Services\Spooler`); strings.Contains(exp, `"Blob"`) {
		t.Errorf("Blob was not deleted:\n%s", exp)
	}
	rec := `offvm\Patches\contoso-agent-1.2.4`
	if got := hv(software, rec, "Title"); got != "Contoso Agent 1.2.4" {
		t.Errorf("record Title = %q", got)
	}
	applied := hv(software, rec, "Applied")
	if !strings.HasSuffix(applied, "Z") || !strings.Contains(applied, "T") {
		t.Errorf("record Applied = %q, want RFC 3339 UTC", applied)
	}
	if got := hv(software, rec, "Files"); got != "8" { // update, 3 creates, 3 mkdirs, delete
		t.Errorf("record Files = %q, want 8", got)
	}
	if got := hv(software, rec, "RegistryChanges"); got != "4" { // a key, two values, a deleted value
		t.Errorf("record RegistryChanges = %q, want 4", got)
	}
	if info := mustOffvm(t, "inspect", "--json", img); !strings.Contains(info, "contoso-agent-1.2.4") {
		t.Errorf("inspect does not list the patch")
	}

	// again: already applied, nothing written
	after := sumFile(t, img)
	st1, err := os.Stat(img)
	must(t, err)
	if out := mustOffvm(t, "patch", "apply", bundle, img); !strings.HasPrefix(out, img+": already applied") {
		t.Errorf("second apply printed %q", out)
	}
	st2, err := os.Stat(img)
	must(t, err)
	if sumFile(t, img) != after || !st1.ModTime().Equal(st2.ModTime()) {
		t.Errorf("applying again changed the image (or its mtime)")
	}
	out = mustOffvm(t, "patch", "status", "--json", bundle, img)
	var st []map[string]any
	if err := jsonLines(out, &st); err != nil || len(st) != 1 || st[0]["status"] != "applied" || st[0]["applied_at"] != applied {
		t.Errorf("status --json: %s (%v)", out, err)
	}
	if out := mustOffvm(t, "patch", "status", bundle, img); !strings.HasPrefix(out, img+": applied ("+applied) {
		t.Errorf("status: %q", out)
	}
	mustOffvm(t, "rollback", img)
	if sumFile(t, img) != before {
		t.Errorf("rollback did not restore the pre-patch image")
	}
}

// TestPatchRefusals: a product that does not match, bundles that leave
// their volume, a failure in the middle, broken and read-only targets
// among good ones, and a target inside a mounted tree.
func TestPatchRefusals(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makePatchImage(t, img)
	before := sumFile(t, img)
	unchanged := func(what string) {
		t.Helper()
		if sumFile(t, img) != before {
			t.Fatalf("%s changed the image", what)
		}
	}

	// not applicable
	other := makeBundle(t, "Windows 10*")
	r := runOffvm(t, "patch", "apply", other, img)
	if r.code != 0 || strings.TrimSpace(r.out) != img+": not applicable: product Windows Server 2019 Standard does not match Windows 10*" {
		t.Errorf("non-matching product: exit %d, %q %q", r.code, r.out, r.err)
	}
	unchanged("a bundle that does not apply")

	// bundles that leave their volume are refused before any image is opened
	dotdot := makeBundle(t, "Windows Server 2019*")
	toml := strings.Replace(strings.ReplaceAll(patchTOML, "%PRODUCT%", "*"), `C:\Program Files\Contoso\old.dll`, `C:\Program Files\..\..\evil.dll`, 1)
	must(t, os.WriteFile(filepath.Join(dotdot, "patch.toml"), []byte(toml), 0o644))
	link := makeBundle(t, "Windows Server 2019*")
	must(t, os.Symlink("/etc", filepath.Join(link, "files", "C", "Program Files", "Contoso", "etc")))
	badName := makeBundle(t, "Windows Server 2019*")
	must(t, os.WriteFile(filepath.Join(badName, "files", "C", "a:b"), nil, 0o644))
	for name, b := range map[string]string{"..": dotdot, "symlink": link, "a:b": badName} {
		r := runOffvm(t, "patch", "apply", b, img)
		if r.code != 1 || !strings.Contains(r.err, "invalid patch bundle") || r.out != "" {
			t.Errorf("bundle with %s: exit %d, stdout %q, stderr %q", name, r.code, r.out, r.err)
		}
		unchanged("a refused bundle")
	}

	// a file too big for the volume fails after other files were written:
	// nothing of it reaches the image
	big := makeBundle(t, "Windows Server 2019*")
	writeFile(t, filepath.Join(big, "files", "C", "zz-big.bin"), 80<<20)
	r = runOffvm(t, "patch", "apply", big, img)
	t.Logf("too big: %s", r.out)
	if r.code != 1 || !strings.HasPrefix(r.out, img+": failed: ") {
		t.Errorf("too big: exit %d, %q %q", r.code, r.out, r.err)
	}
	unchanged("a failed apply")

	// one broken and one read-only target do not stop the good one
	broken := filepath.Join(t.TempDir(), "broken.vhd")
	must(t, os.WriteFile(broken, append([]byte("conectix"), make([]byte, 1<<16)...), 0o644))
	stream := filepath.Join(t.TempDir(), "web02.vmdk")
	run(t, "qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", img, stream)
	streamSum := sumFile(t, stream)
	good := makeBundle(t, "Windows Server 2019*")
	r = runOffvm(t, "patch", "apply", "--jobs", "3", "--json", good, broken, stream, img)
	var res []struct{ Image, Status, Reason string }
	if err := jsonLines(r.out, &res); err != nil || len(res) != 3 {
		t.Fatalf("apply --json: %v\n%s\n%s", err, r.out, r.err)
	}
	if r.code != 1 || res[0].Status != "failed" || res[1].Status != "failed" || res[2].Status != "applied" {
		t.Errorf("mixed targets: exit %d, %+v", r.code, res)
	}
	t.Logf("broken: %s; streamOptimized: %s", res[0].Reason, res[1].Reason)
	if sumFile(t, stream) != streamSum {
		t.Errorf("the read-only target changed")
	}
	mustOffvm(t, "rollback", img)
	unchanged("rollback")

}

// TestPatchMounted: through a mounted tree a bundle is read (dry run,
// status) but never applied: apply is refused, naming what to do, and
// writes nothing to the mount (its unmount leaves the image
// byte-identical); applied to the file afterwards it lands whole, read
// back with ntfs-3g and hivex.
func TestPatchMounted(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makePatchImage(t, img)
	before := sumFile(t, img)
	bundle := makeBundle(t, "Windows Server 2019*")
	mnt := mountLib(t, lib)
	dir := filepath.Join(mnt, "web01.img")
	conf := filepath.Join(dir, "p3", "Program Files", "Contoso", "agent.conf")
	confBefore, _ := os.ReadFile(conf)

	out := mustOffvm(t, "patch", "apply", "--dry-run", bundle, dir)
	if !strings.Contains(out, img+": would apply") || !strings.Contains(out, `update       C:\Program Files\Contoso\agent.dll`) ||
		!strings.Contains(out, `set          HKLM\SOFTWARE\Contoso\Agent\"Port" = REG_DWORD 8080`) {
		t.Errorf("dry run through the mount:\n%s", out)
	}
	r := runOffvm(t, "patch", "apply", bundle, dir)
	t.Logf("through the mount: %s", r.out)
	if r.code != 1 || !strings.HasPrefix(r.out, img+": failed: a bundle is applied to the image file as one transaction") ||
		!strings.Contains(r.out, "run offvm unmount "+mnt+" ") || !strings.Contains(r.out, "offvm patch apply "+bundle+" "+img) {
		t.Errorf("apply through the mount: exit %d, %q %q", r.code, r.out, r.err)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, confBefore) {
		t.Errorf("the refused apply wrote agent.conf through the mount: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "registry", "HKLM", "SOFTWARE", "offvm", "Patches", "contoso-agent-1.2.4")); err == nil {
		t.Error("the refused apply wrote its record through the mount")
	}
	if out := mustOffvm(t, "patch", "status", bundle, filepath.Dir(dir)); !strings.HasPrefix(out, img+": not applied") {
		t.Errorf("status of the mounted library: %q", out)
	}
	mustOffvm(t, "unmount", mnt)
	if sumFile(t, img) != before {
		t.Fatal("the refused apply reached the image through the mount's commit")
	}
	if out := mustOffvm(t, "patch", "apply", bundle, img); !strings.HasPrefix(out, img+": applied (") {
		t.Fatalf("apply to the file after unmount: %q", out)
	}

	vol := ntfsVolume(t, img)
	if o, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", vol).CombinedOutput(); err != nil {
		t.Errorf("ntfsresize --info after the commit: %v\n%s", err, o)
	}
	if got, err := ntfsFile(t, vol, "/Program Files/Contoso/agent.dll"); err != nil || !bytes.Equal(got, agentNew) {
		t.Errorf("agent.dll after the commit: %d bytes (%v)", len(got), err)
	}
	if got, err := ntfsFile(t, vol, "/Program Files/Contoso/plugins/net/http.dll"); err != nil || string(got) != "http plugin" {
		t.Errorf("http.dll after the commit: %q (%v)", got, err)
	}
	if _, err := ntfsFile(t, vol, "/Program Files/Contoso/old.dll"); err == nil {
		t.Errorf("old.dll survived")
	}
	software := ntfsCat(t, img, 3, "/Windows/System32/config/SOFTWARE")
	if got := strings.TrimSpace(run(t, "hivexget", software, `Contoso\Agent`, "Port")); got != "8080" {
		t.Errorf("Port = %q", got)
	}
	if got := strings.TrimSpace(run(t, "hivexget", software, `offvm\Patches\contoso-agent-1.2.4`, "Title")); got != "Contoso Agent 1.2.4" {
		t.Errorf("record Title = %q", got)
	}
	if out := mustOffvm(t, "patch", "status", bundle, img); !strings.HasPrefix(out, img+": applied (") {
		t.Errorf("status after unmount: %q", out)
	}
	mustOffvm(t, "rollback", img)
	if sumFile(t, img) != before {
		t.Errorf("rollback did not restore the pre-patch image")
	}
}
