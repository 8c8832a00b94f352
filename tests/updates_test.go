package tests

import (
	"bytes"
	"crypto/rand"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/updates/msutest"
)

// CBS state of the 17763 test image: the February 2020 rollup installed,
// the December 2019 one superseded by it (as Windows leaves them).
const cbsReg = `
[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages\Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.1039.1.4]
"CurrentState"=dword:00000070
"InstallTimeHigh"=dword:01d5e0b1
"InstallTimeLow"=dword:42180000

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages\Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.914.1.5]
"CurrentState"=dword:00000050
`

// testUBR is the revision (CurrentVersion\UBR) of each build's test image,
// as Windows Update leaves it: 17763.4002 (the April 2023 update), past
// the 17763.1039 rollup CBS lists and before KB5034439's 17763.5329;
// 20348.2113 (the December 2023 update), before KB5034129's 20348.2227.
var testUBR = map[string]int{"17763": 4002, "20348": 2113}

// makeUpdatesImage is makeWindowsImage's layout for build 17763 or 20348
// at the build's testUBR, with Select\Current = 2 (so the service must
// land in ControlSet002) and, when pending, a reboot pending in CBS.
func makeUpdatesImage(t *testing.T, path string, build string, pending bool) {
	t.Helper()
	makeUpdatesImageAt(t, path, build, testUBR[build], pending)
}

// makeUpdatesImageAt is makeUpdatesImage at revision build.ubr.
func makeUpdatesImageAt(t *testing.T, path string, build string, ubr int, pending bool) {
	t.Helper()
	sysReg := strings.ReplaceAll(strings.ReplaceAll(systemReg, "ControlSet001", "ControlSet002"), `"Current"=dword:00000001`, `"Current"=dword:00000002`)
	softReg := strings.ReplaceAll(softwareReg+cbsReg, "17763", build)
	softReg = strings.Replace(softReg, `"UBR"=dword:00000fa2`, fmt.Sprintf(`"UBR"=dword:%08x`, ubr), 1)
	if !strings.Contains(softReg, fmt.Sprintf(`"UBR"=dword:%08x`, ubr)) {
		t.Fatal("makeUpdatesImageAt: softwareReg has no UBR value to set")
	}
	if pending {
		softReg += "\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending]\n"
	}
	makeUpdatesDisk(t, path, makeHive(t, `HKEY_LOCAL_MACHINE\SYSTEM`, sysReg), makeHive(t, `HKEY_LOCAL_MACHINE\SOFTWARE`, softReg))
}

// makeUpdatesDisk is the GPT disk of an update test image (EFI FAT32, MSR,
// NTFS) with the hive files system and software in its config folder, and
// the extra files there too (a hive's logs).
func makeUpdatesDisk(t *testing.T, path, system, software string, extra ...string) {
	t.Helper()
	efiSrc := t.TempDir()
	writeFile(t, filepath.Join(efiSrc, "EFI", "Boot", "bootx64.efi"), 4000)
	fat := makeFAT(t, efiSrc, 40, 32, "SYSTEM")
	ntfs := makeNTFS(t, 64, "Windows", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", system, filepath.Join(cfg, "SYSTEM"))
		run(t, "cp", software, filepath.Join(cfg, "SOFTWARE"))
		for _, f := range extra {
			run(t, "cp", f, cfg)
		}
	})
	makeDisk(t, path, "gpt", []part{
		{sizeMiB: 40, typ: "U", fs: fat},
		{sizeMiB: 16, typ: "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"},
		{sizeMiB: 64, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs, uuid: ntfsGUID},
	})
}

// buildFirstboot builds offvm-firstboot.exe for Windows amd64 and points
// offvm at it.
func buildFirstboot(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "offvm-firstboot.exe")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", exe, "./cmd/offvm-firstboot")
	cmd.Dir = testutil.ModuleRoot()
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building offvm-firstboot: %v\n%s", err, out)
	}
	t.Setenv("OFFVM_FIRSTBOOT", exe)
	return exe
}

// TestUpdatesScanAndStage: packages built like Microsoft's (gcab), scanned
// against 17763 and 20348 images, staged into one, checked with ntfs-3g,
// hivex and file(1); staged again (no change), inspected, rolled back.
func TestUpdatesScanAndStage(t *testing.T) {
	msutest.Need(t)
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	exe := buildFirstboot(t)
	pk := t.TempDir()
	lcu := msutest.LCU17763.MSU(t, pk)       // installed
	newLCU := msutest.LCU17763New.MSU(t, pk) // needed
	old := msutest.Superseded.MSU(t, pk)     // installed, superseded
	ssu := msutest.SSU17763.CAB(t, pk)       // needed, servicing stack, as a .cab
	lcu22 := msutest.LCU20348.MSU(t, pk)     // not applicable on 17763
	pkgs := []string{lcu, newLCU, old, ssu, lcu22}

	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	img22 := filepath.Join(lib, "web22.img")
	img22new := filepath.Join(lib, "web22new.img") // at KB5034129's own revision
	makeUpdatesImage(t, img, "17763", false)
	makeUpdatesImage(t, img22, "20348", false)
	makeUpdatesImageAt(t, img22new, "20348", 2227, false)
	before, before22, before22new := sumFile(t, img), sumFile(t, img22), sumFile(t, img22new)

	out := mustOffvm(t, append(append([]string{"updates", "scan"}, pkgs...), lib)...)
	t.Logf("scan:\n%s", out)
	for _, want := range []string{
		img + ": KB4532691: installed: this package is installed (Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.1039.1.4)",
		img + ": KB5034439: needed",
		img + ": KB4524148: installed: installed, and since superseded (Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.914.1.5)",
		img + ": KB5005112: needed",
		img + ": KB5034129: not applicable: the package is for build 20348, the image is build 17763",
		img22 + ": KB4532691: not applicable: the package is for build 17763, the image is build 20348",
		img22 + ": KB4524148: not applicable: the package is for build 17763, the image is build 20348",
		img22 + ": KB5034129: needed", // 20348.2113 is before the package's 2227
		img22new + ": KB5034129: installed: the image is at 20348.2227, the revision this cumulative update brings (CurrentVersion\\UBR = 2227)",
		img22new + ": KB4532691: not applicable: the package is for build 17763, the image is build 20348",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("scan lacks %q", want)
		}
	}

	// --json: one object per image a line, the same verdicts
	var scans []struct {
		Image   string
		Updates []struct{ KB, Status, Reason, By string }
		Pending []string `json:"reboot_pending"`
	}
	must(t, jsonLines(mustOffvm(t, append(append([]string{"updates", "scan", "--json"}, pkgs...), lib)...), &scans))
	js := map[string]string{}
	for _, sc := range scans {
		if sc.Pending == nil {
			t.Errorf("%s: reboot_pending is not a list", sc.Image)
		}
		for _, u := range sc.Updates {
			js[sc.Image+" "+u.KB] = u.Status + "|" + u.By
		}
	}
	if len(scans) != 3 || js[img+" KB5034439"] != "needed|" || js[img22+" KB5034129"] != "needed|" ||
		js[img22new+" KB5034129"] != `installed|CurrentVersion\UBR = 2227` ||
		js[img+" KB4532691"] != "installed|Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.1039.1.4" {
		t.Errorf("scan --json: %v", js)
	}

	// dry run: lists, writes nothing
	out = mustOffvm(t, append(append([]string{"updates", "stage", "--dry-run"}, pkgs...), img)...)
	t.Logf("stage --dry-run:\n%s", out)
	for _, want := range []string{img + ": would stage", `p3:/Windows/offvm/offvm-firstboot.exe`, `p3:/Windows/offvm/staged/KB5034439/Windows10.0-KB5034439-x64.msu`,
		`HKLM\SYSTEM\ControlSet002\Services\offvm-firstboot\"Start" = REG_DWORD 2`} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q", want)
		}
	}
	if sumFile(t, img) != before {
		t.Fatal("--dry-run changed the image")
	}

	out = mustOffvm(t, append(append([]string{"updates", "stage"}, pkgs...), lib)...)
	t.Logf("stage:\n%s", out)
	if !strings.Contains(out, img+": staged KB5005112, KB5034439\n") || !strings.Contains(out, img22+": staged KB5034129\n") ||
		!strings.Contains(out, img22new+": nothing to stage") {
		t.Fatalf("stage printed %q", out)
	}

	// ntfs-3g sees the files, byte for byte; file(1) and hivex the rest
	vol := ntfsVolume(t, img)
	wantExe, _ := os.ReadFile(exe)
	wantMSU, _ := os.ReadFile(newLCU)
	wantSSU, _ := os.ReadFile(ssu)
	for p, want := range map[string][]byte{
		"/Windows/offvm/offvm-firstboot.exe":                            wantExe,
		"/Windows/offvm/staged/KB5034439/Windows10.0-KB5034439-x64.msu": wantMSU,
		"/Windows/offvm/staged/KB5005112/Windows10.0-KB5005112-x64.cab": wantSSU,
	} {
		if got, err := ntfsFile(t, vol, p); err != nil || !bytes.Equal(got, want) {
			t.Errorf("ntfscat %s: %d bytes (%v), want %d", p, len(got), err, len(want))
		}
	}
	if _, err := ntfsFile(t, vol, "/Windows/offvm/staged/KB4532691"); err == nil {
		t.Error("an installed package was staged")
	}
	exeOut := filepath.Join(t.TempDir(), "fb.exe")
	b, _ := ntfsFile(t, vol, "/Windows/offvm/offvm-firstboot.exe")
	must(t, os.WriteFile(exeOut, b, 0o644))
	if f := run(t, "file", exeOut); !strings.Contains(f, "PE32+ executable") || !strings.Contains(f, "x86-64") || !strings.Contains(f, "MS Windows") {
		t.Errorf("file: %s", f)
	}
	checkPE(t, exeOut)
	hv := hivexOf(t, vol)
	svc := `\ControlSet002\Services\offvm-firstboot`
	for val, want := range map[string]string{"ImagePath": `%SystemRoot%\offvm\offvm-firstboot.exe`, "Start": "2", "ObjectName": "LocalSystem", "Type": "16"} {
		if got := hv("SYSTEM", svc, val); got != want {
			t.Errorf("hivexget SYSTEM %s %s = %q, want %q", svc, val, got, want)
		}
	}
	if got := hv("SYSTEM", `\ControlSet001\Services\offvm-firstboot`, "Start"); !strings.HasPrefix(got, "error") {
		t.Errorf("the service landed in ControlSet001 too: %q", got)
	}
	for kb, want := range map[string]string{"KB5034439": "0", "KB5005112": "1"} {
		k := `\offvm\Staged\` + kb
		if hv("SOFTWARE", k, "State") != "staged" || hv("SOFTWARE", k, "ServicingStack") != want {
			t.Errorf("hivexget SOFTWARE %s: State %q ServicingStack %q", k, hv("SOFTWARE", k, "State"), hv("SOFTWARE", k, "ServicingStack"))
		}
	}
	if got := hv("SOFTWARE", `\offvm\Staged\KB5005112`, "Order"); got != "0" {
		t.Errorf("the servicing stack is not first: Order %q", got)
	}
	// CBS is untouched: the staged package is not installed
	if got := hv("SOFTWARE", `\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages\Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.5329.1.9`, "CurrentState"); !strings.HasPrefix(got, "error") {
		t.Errorf("offvm wrote CBS state: %q", got)
	}

	// scan says staged; staging again changes nothing
	out = mustOffvm(t, "updates", "scan", newLCU, ssu, img)
	if !strings.Contains(out, img+": KB5034439: staged") || !strings.Contains(out, img+": KB5005112: staged") {
		t.Errorf("scan after staging: %s", out)
	}
	staged := sumFile(t, img)
	out = mustOffvm(t, append(append([]string{"updates", "stage"}, pkgs...), img)...)
	if !strings.HasPrefix(out, img+": nothing to stage") || sumFile(t, img) != staged {
		t.Errorf("second stage: %q (image changed: %v)", out, sumFile(t, img) != staged)
	}

	// inspect shows the staged entries
	var inf struct {
		Staged []struct{ ID, State string } `json:"staged"`
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "inspect", "--json", img)), &inf))
	if len(inf.Staged) != 2 || inf.Staged[0].State != "staged" {
		t.Errorf("inspect staged: %+v", inf.Staged)
	}

	// the library report: still missing (CBS says so), and staged
	var rep struct {
		Images []struct {
			Path            string
			Missing, Staged []string
			Issues          []string
		}
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "report", "--json", "--require", "KB5034439,KB4532691", lib)), &rep))
	found := false
	for _, r := range rep.Images {
		if r.Path == img {
			found = true
			if strings.Join(r.Missing, ",") != "KB5034439" || strings.Join(r.Staged, ",") != "KB5034439" ||
				!strings.Contains(strings.Join(r.Issues, ";"), "KB5034439 (staged for the next boot)") {
				t.Errorf("report row: %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("report has no row for %s", img)
	}
	html := filepath.Join(t.TempDir(), "r.html")
	text := mustOffvm(t, "report", "--html", html, "--require", "KB5034439", lib)
	if b, _ := os.ReadFile(html); !bytes.Contains(b, []byte("staged for the next boot")) {
		t.Error("the HTML report does not say the update is staged")
	}
	if !strings.Contains(text, "KB5034439 (staged for the next boot)") {
		t.Errorf("the text report does not say the update is staged:\n%s", text)
	}

	// after the VM ran (a copy of the image): offvm-firstboot recorded its
	// results, CBS has the rollup; inspect shows the records, scan and
	// the report follow CBS (the failed servicing stack is needed again)
	ran := filepath.Join(t.TempDir(), "ran.img")
	run(t, "cp", "--sparse=always", img, ran)
	booted := filepath.Join(t.TempDir(), "booted.reg")
	must(t, os.WriteFile(booted, []byte("Windows Registry Editor Version 5.00\r\n\r\n"+
		"[HKEY_LOCAL_MACHINE\\SOFTWARE\\offvm\\Staged\\KB5034439]\r\n\"State\"=\"done\"\r\n\"Result\"=\"installed, restart required\"\r\n\"ExitCode\"=\"3010\"\r\n\"Attempts\"=\"1\"\r\n\"Finished\"=\"2026-12-04T03:00:00Z\"\r\n\r\n"+
		"[HKEY_LOCAL_MACHINE\\SOFTWARE\\offvm\\Staged\\KB5005112]\r\n\"State\"=\"failed\"\r\n\"Result\"=\"failed\"\r\n\"ExitCode\"=\"1\"\r\n\"Attempts\"=\"3\"\r\n\r\n"+
		"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\Packages\\Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.5329.1.9]\r\n\"CurrentState\"=dword:00000070\r\n\r\n"+
		// the child package update.mum names, where CBS keeps the KB of a rollup
		"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\Packages\\Package_1_for_KB5034439~31bf3856ad364e35~amd64~~17763.5329.1.9]\r\n\"CurrentState\"=dword:00000070\r\n"), 0o644))
	mustOffvm(t, "reg", "import", ran, booted)
	var after struct {
		Staged []struct {
			ID, State string
			Result    *string
			ExitCode  *string `json:"exit_code"`
		} `json:"staged"`
	}
	must(t, json.Unmarshal([]byte(mustOffvm(t, "inspect", "--json", ran)), &after))
	got := map[string]string{}
	for _, s := range after.Staged {
		if s.Result != nil && s.ExitCode != nil {
			got[s.ID] = s.State + "/" + *s.Result + "/" + *s.ExitCode
		}
	}
	if got["KB5034439"] != "done/installed, restart required/3010" || got["KB5005112"] != "failed/failed/1" {
		t.Errorf("inspect after the VM ran: %+v", after.Staged)
	}
	out = mustOffvm(t, "updates", "scan", newLCU, ssu, ran)
	if !strings.Contains(out, ran+": KB5034439: installed") || !strings.Contains(out, ran+": KB5005112: needed: staged before; the first boot recorded failed (failed), exit code 1\n") {
		t.Errorf("scan after the VM ran: %s", out)
	}
	if text := mustOffvm(t, "report", "--require", "KB5034439", ran); strings.Contains(text, "missing") || !strings.Contains(text, "0 need attention") {
		t.Errorf("the report still misses KB5034439 after the VM installed it:\n%s", text)
	}

	mustOffvm(t, "rollback", img)
	mustOffvm(t, "rollback", img22)
	if sumFile(t, img) != before || sumFile(t, img22) != before22 {
		t.Error("rollback did not restore the images")
	}
	if sumFile(t, img22new) != before22new {
		t.Error("an image with nothing to stage was changed")
	}
}

// TestUpdatesRefusals: a damaged package is refused before any image is
// opened; a first-boot program that is not a Windows program for the
// image's machine is refused; a full volume fails the image and leaves it
// unchanged; a pending reboot (RebootPending, WinSxS\pending.xml) is
// reported.
func TestUpdatesRefusals(t *testing.T) {
	msutest.Need(t)
	exe := buildFirstboot(t)
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeUpdatesImage(t, img, "17763", true)
	before := sumFile(t, img)
	pk := t.TempDir()
	good := msutest.LCU17763New.MSU(t, pk)
	data, _ := os.ReadFile(good)
	damaged := filepath.Join(pk, "Windows10.0-KB5034440-x64.msu")
	must(t, os.WriteFile(damaged, append(data[:len(data)-300:len(data)-300], make([]byte, 300)...), 0o644))

	r := runOffvm(t, "updates", "stage", good, damaged, img)
	if r.code != 1 || !strings.Contains(r.err, damaged) || !strings.Contains(r.err, "damaged cabinet") || r.out != "" {
		t.Errorf("damaged package: exit %d, stderr %q, stdout %q", r.code, r.err, r.out)
	}
	// the first-boot program: an ELF file, and the PE with its machine
	// patched to arm64 (IMAGE_FILE_HEADER.Machine right after "PE\0\0")
	pexe, _ := os.ReadFile(exe)
	arm := filepath.Join(t.TempDir(), "arm64.exe")
	off := int(pexe[0x3c]) | int(pexe[0x3d])<<8
	pexe[off+4], pexe[off+5] = 0x64, 0xaa
	must(t, os.WriteFile(arm, pexe, 0o644))
	for prog, want := range map[string]string{"/bin/true": "/bin/true: not a Windows program", arm: arm + ": built for machine 0xaa64, the image is amd64"} {
		t.Setenv("OFFVM_FIRSTBOOT", prog)
		if r := runOffvm(t, "updates", "stage", good, img); r.code != 1 || !strings.Contains(r.out, img+": failed: ") || !strings.Contains(r.out, want) || sumFile(t, img) != before {
			t.Errorf("first-boot program %s: exit %d, %q %q", prog, r.code, r.out, r.err)
		}
	}
	t.Setenv("OFFVM_FIRSTBOOT", exe)

	if r := runOffvm(t, "updates", "scan", img); r.code != 2 {
		t.Errorf("scan without packages: exit %d", r.code)
	}

	// no space: a valid package (a cabinet with 80 MiB after its end) that
	// does not fit the 64 MiB volume
	big := filepath.Join(pk, "Windows10.0-KB5034439-x64.cab")
	msutest.LCU17763New.CAB(t, t.TempDir())
	cab := msutest.LCU17763New.CAB(t, t.TempDir())
	cb, _ := os.ReadFile(cab)
	pad := make([]byte, 80<<20)
	rand.Read(pad)
	must(t, os.WriteFile(big, append(cb, pad...), 0o644))
	r = runOffvm(t, "updates", "stage", big, img)
	if r.code != 1 || !strings.Contains(r.out, img+": failed") || sumFile(t, img) != before {
		t.Errorf("full volume: exit %d, out %q, err %q, image changed %v", r.code, r.out, r.err, sumFile(t, img) != before)
	}

	out := mustOffvm(t, "updates", "scan", good, img)
	if !strings.Contains(out, img+": reboot pending: Component Based Servicing\\RebootPending is set") {
		t.Errorf("scan of a pending image: %s", out)
	}
	out = mustOffvm(t, "updates", "stage", good, img)
	if !strings.Contains(out, img+": staged KB5034439 (reboot pending: ") {
		t.Errorf("stage into a pending image: %s", out)
	}

	// servicing left WinSxS\pending.xml (written by a patch bundle)
	pend := t.TempDir()
	must(t, os.WriteFile(filepath.Join(pend, "patch.toml"), []byte("id = \"pending-xml\"\n[applies]\nos = \"windows\"\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(pend, "files", "C", "Windows", "WinSxS"), 0o755))
	must(t, os.WriteFile(filepath.Join(pend, "files", "C", "Windows", "WinSxS", "pending.xml"), []byte("<?xml version='1.0' encoding='utf-8'?>\r\n<PendingTransaction Version=\"3.1\"/>\r\n"), 0o644))
	mustOffvm(t, "patch", "apply", pend, img)
	if out := mustOffvm(t, "updates", "scan", good, img); !strings.Contains(out, `C:\Windows\WinSxS\pending.xml exists`) {
		t.Errorf("scan with pending.xml: %s", out)
	}
}

// TestUpdatesCorpusSystem: images whose SYSTEM hive is a real one from
// the corpus (amd64, Select\Current = 1, 12-15 MB, each with a real
// PendingFileRenameOperations), scanned and staged into: the parent's
// revisionCompare against the UBR; the Windows 10 1709 hive is dirty
// without its logs, so staging fails naming that and leaves the image as
// it was; SYSTEM_B with its real .LOG1/.LOG2 is replayed and staged into,
// the service in the control set the real hive names and its own keys
// kept (hivexget through ntfscat); rollback byte for byte.
func TestUpdatesCorpusSystem(t *testing.T) {
	msutest.Need(t)
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	unxz := func(rel, name string) string {
		p := filepath.Join(t.TempDir(), name)
		must(t, os.WriteFile(p, []byte(run(t, "xz", "-dc", testutil.Corpus(t, rel))), 0o644))
		return p
	}
	win1709 := unxz("regipy/SYSTEM_WIN_10_1709.xz", "SYSTEM")
	logs := t.TempDir()
	sysB := filepath.Join(logs, "SYSTEM")
	run(t, "cp", unxz("regipy/SYSTEM_B.xz", "SYSTEM"), sysB)
	run(t, "cp", unxz("regipy/SYSTEM_B.LOG1.xz", "SYSTEM.LOG1"), logs)
	run(t, "cp", unxz("regipy/SYSTEM_B.LOG2.xz", "SYSTEM.LOG2"), logs)
	buildFirstboot(t)
	softReg := strings.NewReplacer("17763", "16299", "Windows Server 2019 Standard", "Windows 10 Pro", "ServerStandard", "Professional",
		`"InstallationType"="Server"`, `"InstallationType"="Client"`, `"UBR"=dword:00000fa2`, `"UBR"=dword:000007fd`).Replace(softwareReg + cbsReg)
	software := makeHive(t, `HKEY_LOCAL_MACHINE\SOFTWARE`, softReg) // 16299.2045
	lib := t.TempDir()
	dirty, img := filepath.Join(lib, "desk1709.img"), filepath.Join(lib, "deskB.img")
	makeUpdatesDisk(t, dirty, win1709, software)
	makeUpdatesDisk(t, img, sysB, software, filepath.Join(logs, "SYSTEM.LOG1"), filepath.Join(logs, "SYSTEM.LOG2"))
	beforeDirty, before := sumFile(t, dirty), sumFile(t, img)

	pk := t.TempDir()
	lcu := msutest.LCU17763New
	lcu.KB, lcu.Version, lcu.ParentBuild, lcu.Product = "KB4601354", "16299.2166.1.7", 16299, "Windows 10"
	later := lcu
	later.KB, later.Version, later.ParentRevision = "KB4601999", "16299.2200.1.1", 2100
	pkgs := []string{lcu.MSU(t, pk), later.MSU(t, pk), msutest.LCU17763.MSU(t, pk)}
	out := mustOffvm(t, append(append([]string{"updates", "scan"}, pkgs...), lib)...)
	t.Logf("scan:\n%s", out)
	for _, im := range []string{dirty, img} {
		for _, want := range []string{
			im + ": KB4601354: needed",
			im + ": KB4601999: not applicable: the package needs 16299.2100 or later, the image is at 16299.2045",
			im + ": KB4532691: not applicable: the package is for build 17763, the image is build 16299",
			im + ": reboot pending: Session Manager has PendingFileRenameOperations",
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("scan lacks %q", want)
			}
		}
	}

	r := runOffvm(t, append(append([]string{"updates", "stage"}, pkgs...), dirty)...)
	if r.code != 1 || !strings.Contains(r.out, dirty+": failed: ") || !strings.Contains(r.out, "dirty hive") || !strings.Contains(r.out, "no transaction log") {
		t.Errorf("stage into a dirty hive without logs: exit %d, %q %q", r.code, r.out, r.err)
	}
	if sumFile(t, dirty) != beforeDirty {
		t.Error("the failed stage changed the image")
	}

	out = mustOffvm(t, append(append([]string{"updates", "stage"}, pkgs...), img)...)
	if !strings.HasPrefix(out, img+": staged KB4601354 (reboot pending: Session Manager has PendingFileRenameOperations)\n") {
		t.Fatalf("stage: %s", out)
	}
	sys := ntfsCat(t, img, 3, "/Windows/System32/config/SYSTEM")
	svc := `\ControlSet001\Services\offvm-firstboot`
	for _, c := range []struct{ key, val, want string }{
		{svc, "ImagePath", `%SystemRoot%\offvm\offvm-firstboot.exe`}, {svc, "Start", "2"}, {svc, "ObjectName", "LocalSystem"},
		{`\ControlSet001\Control\ComputerName\ComputerName`, "ComputerName", "DESKTOP-PM6C56D"},
		{`\ControlSet001\Control\Session Manager\Environment`, "PROCESSOR_ARCHITECTURE", "AMD64"},
	} {
		if got := strings.TrimSpace(run(t, "hivexget", sys, c.key, c.val)); got != c.want {
			t.Errorf("hivexget SYSTEM %s %s = %q, want %q", c.key, c.val, got, c.want)
		}
	}
	mustOffvm(t, "rollback", img)
	if sumFile(t, img) != before {
		t.Error("rollback did not restore the image")
	}
}

// checkPE reads the program with Go's debug/pe: PE32+ (a 64-bit optional
// header) for amd64, a console or GUI subsystem.
func checkPE(t *testing.T, path string) {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatalf("debug/pe: %v", err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || oh.Magic != 0x20b || f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("debug/pe: machine 0x%x, optional header %T, want PE32+ for amd64", f.Machine, f.OptionalHeader)
		return
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_CUI && oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Errorf("debug/pe: subsystem %d, want a console or GUI program", oh.Subsystem)
	}
}

// hivexOf copies the SYSTEM and SOFTWARE hives out of an NTFS volume
// (ntfscat) and returns a hivexget on them: the value's text, or "error: …"
// when hivexget finds no such key or value.
func hivexOf(t *testing.T, vol string) func(hive, key, val string) string {
	t.Helper()
	hives := t.TempDir()
	for _, h := range []string{"SYSTEM", "SOFTWARE"} {
		b, err := ntfsFile(t, vol, "/Windows/System32/config/"+h)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(hives, h), b, 0o644))
	}
	return func(h, key, val string) string {
		o, err := exec.Command("hivexget", filepath.Join(hives, h), key, val).Output()
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.TrimSpace(string(o))
	}
}
