package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/updates/msutest"
)

// updatesBundle writes a Windows bundle with a file, a .reg and the
// packages in updates/.
func updatesBundle(t *testing.T, id string, extraFile int, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "patch.toml"), []byte("id = \""+id+"\"\ntitle = \"March updates and the agent\"\n\n[applies]\nos = \"windows\"\n"), 0o644))
	conf := filepath.Join(dir, "files", "C", "ProgramData", "Acme", "agent.conf")
	must(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	must(t, os.WriteFile(conf, []byte("server = updates.example\r\n"), 0o644))
	if extraFile > 0 {
		writeFile(t, filepath.Join(dir, "files", "C", "ProgramData", "Acme", "big.bin"), extraFile)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "registry"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "registry", "10-acme.reg"), []byte("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Acme\\Agent]\r\n\"Version\"=\"2\"\r\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "updates"), 0o755))
	for _, p := range pkgs {
		run(t, "cp", p, filepath.Join(dir, "updates"))
	}
	return dir
}

// TestPatchBundleUpdates: a bundle's updates/ folder is staged by patch
// apply in the bundle's own transaction: dry run (image unchanged), apply
// (the bundle's file and value, the staged package, the service and the
// Staged record, seen by ntfs-3g and hivex), the image's UBR and the
// packages given together deciding what is staged, apply again (already
// applied), rollback; a full volume fails the whole bundle, staging
// included; a damaged package refuses the bundle before any image.
func TestPatchBundleUpdates(t *testing.T) {
	msutest.Need(t)
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	exe := buildFirstboot(t)
	pk := t.TempDir()
	newLCU := msutest.LCU17763New.MSU(t, pk) // needed (17763.5329; the image is at 17763.4002)
	mid := msutest.LCU17763New
	mid.KB, mid.Version = "KB5031361", "17763.4974.1.6" // needed alone, superseded by KB5034439
	midLCU := mid.MSU(t, pk)
	under := msutest.LCU17763New
	under.KB, under.Version = "KB5025229", "17763.3000.1.2" // the image's UBR 4002 is past it
	underLCU := under.MSU(t, pk)
	ssu := msutest.SSU17763.CAB(t, pk) // needed, servicing stack

	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeUpdatesImage(t, img, "17763", false)
	before := sumFile(t, img)
	bundle := updatesBundle(t, "acme-2026-03", 0, newLCU, midLCU, underLCU, ssu)

	out := mustOffvm(t, "patch", "apply", "--dry-run", bundle, img)
	t.Logf("dry run:\n%s", out)
	for _, want := range []string{
		"stage        KB5034439", "stage        KB5005112",
		"update       KB5031361 not applicable: superseded by KB5034439 (17763.5329.1.9), given with it",
		"update       KB5025229 installed: the image is at 17763.4002, later than the 17763.3000 this cumulative update brings",
		"p3:/Windows/offvm/staged/KB5034439/Windows10.0-KB5034439-x64.msu", `C:\ProgramData\Acme\agent.conf`,
		`HKLM\SYSTEM\ControlSet002\Services\offvm-firstboot\"Start" = REG_DWORD 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q", want)
		}
	}
	if strings.Contains(out, "staged/KB5031361") || strings.Contains(out, "staged/KB5025229") {
		t.Error("the dry run would stage a superseded or included package")
	}
	if sumFile(t, img) != before {
		t.Fatal("--dry-run changed the image")
	}

	out = mustOffvm(t, "patch", "apply", bundle, img)
	if !strings.Contains(out, img+": applied") {
		t.Fatalf("apply: %s", out)
	}
	vol := ntfsVolume(t, img)
	wantMSU, _ := os.ReadFile(newLCU)
	wantExe, _ := os.ReadFile(exe)
	for p, want := range map[string][]byte{
		"/ProgramData/Acme/agent.conf":                                  []byte("server = updates.example\r\n"),
		"/Windows/offvm/staged/KB5034439/Windows10.0-KB5034439-x64.msu": wantMSU,
		"/Windows/offvm/offvm-firstboot.exe":                            wantExe,
	} {
		if got, err := ntfsFile(t, vol, p); err != nil || !bytes.Equal(got, want) {
			t.Errorf("ntfscat %s: %d bytes (%v), want %d", p, len(got), err, len(want))
		}
	}
	for _, p := range []string{"/Windows/offvm/staged/KB5031361", "/Windows/offvm/staged/KB5025229"} {
		if _, err := ntfsFile(t, vol, p); err == nil {
			t.Errorf("%s was staged", p)
		}
	}
	hv := hivexOf(t, vol)
	for _, c := range []struct{ hive, key, val, want string }{
		{"SOFTWARE", `\Acme\Agent`, "Version", "2"},
		{"SOFTWARE", `\offvm\Staged\KB5034439`, "State", "staged"},
		{"SOFTWARE", `\offvm\Staged\KB5005112`, "Order", "0"},
		{"SYSTEM", `\ControlSet002\Services\offvm-firstboot`, "Start", "2"},
		{"SYSTEM", `\ControlSet002\Services\offvm-firstboot`, "ImagePath", `%SystemRoot%\offvm\offvm-firstboot.exe`},
	} {
		if got := hv(c.hive, c.key, c.val); got != c.want {
			t.Errorf("hivexget %s %s %s = %q, want %q", c.hive, c.key, c.val, got, c.want)
		}
	}
	if got := hv("SOFTWARE", `\offvm\Staged\KB5031361`, "State"); !strings.HasPrefix(got, "error") {
		t.Errorf("a superseded package has a Staged record: %q", got)
	}
	if out := mustOffvm(t, "updates", "scan", newLCU, img); !strings.Contains(out, img+": KB5034439: staged") {
		t.Errorf("scan after apply: %s", out)
	}

	applied := sumFile(t, img)
	if out := mustOffvm(t, "patch", "apply", bundle, img); !strings.Contains(out, "already applied") || sumFile(t, img) != applied {
		t.Errorf("second apply: %q (image changed: %v)", out, sumFile(t, img) != applied)
	}
	mustOffvm(t, "rollback", img)
	if sumFile(t, img) != before {
		t.Fatal("rollback did not restore the image")
	}

	// the bundle's own file does not fit: nothing of it is written, the
	// staging neither
	full := updatesBundle(t, "acme-too-big", 80<<20, newLCU)
	if r := runOffvm(t, "patch", "apply", full, img); r.code == 0 || !strings.Contains(r.out, "failed") {
		t.Errorf("apply on a full volume: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if sumFile(t, img) != before {
		t.Error("a failed apply changed the image")
	}

	// a damaged package refuses the bundle before any image is opened
	bad := filepath.Join(t.TempDir(), "Windows10.0-KB5099999-x64.msu")
	b, _ := os.ReadFile(newLCU)
	b[len(b)/2] ^= 0xff
	must(t, os.WriteFile(bad, b, 0o644))
	r := runOffvm(t, "patch", "apply", updatesBundle(t, "acme-bad", 0, bad), img)
	if r.code == 0 || !strings.Contains(r.out+r.err, "KB5099999") || sumFile(t, img) != before {
		t.Errorf("damaged package: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestPatchBundleUpdatesMountedKilled: a bundle with updates/ is never
// applied through a mounted tree (refused, naming what to do; nothing
// reaches the mount, its unmount leaves the image byte-identical); applied
// to the file, offvm killed (SIGKILL) during the commit leaves the image
// old or new, staging included, once offvm check has recovered it; a
// pending reboot is noted.
func TestPatchBundleUpdatesMountedKilled(t *testing.T) {
	msutest.Need(t)
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	buildFirstboot(t)
	pk := t.TempDir()
	newLCU := msutest.LCU17763New.MSU(t, pk)
	ssu := msutest.SSU17763.CAB(t, pk)
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeUpdatesImage(t, img, "17763", true)
	before := sumFile(t, img)
	bundle := updatesBundle(t, "acme-2026-03", 0, newLCU, ssu)

	mnt := mountLib(t, lib)
	dir := filepath.Join(mnt, "web01.img")
	r := runOffvm(t, "patch", "apply", bundle, dir)
	t.Logf("through the mount: %s", r.out)
	if r.code != 1 || !strings.HasPrefix(r.out, img+": failed: a bundle with update packages (updates/) is applied to the image file as one transaction") ||
		!strings.Contains(r.out, "run offvm unmount "+mnt+" ") || !strings.Contains(r.out, "offvm patch apply "+bundle+" "+img) {
		t.Errorf("apply through the mount: exit %d, %q %q", r.code, r.out, r.err)
	}
	if r := runOffvm(t, "patch", "apply", "--dry-run", bundle, dir); r.code != 1 || !strings.Contains(r.out, "decided on the image file: run offvm unmount "+mnt) {
		t.Errorf("dry run through the mount: exit %d, %q %q", r.code, r.out, r.err)
	}
	if r := runOffvm(t, "updates", "stage", newLCU, dir); r.code != 1 || !strings.Contains(r.out, img+": failed: ") || !strings.Contains(r.out, "run offvm unmount "+mnt+" first") {
		t.Errorf("updates stage through the mount: exit %d, %q %q", r.code, r.out, r.err)
	}
	for _, p := range []string{"p3/Windows/offvm", "registry/HKLM/SOFTWARE/offvm/Staged"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("the refused apply wrote %s through the mount", p)
		}
	}
	mustOffvm(t, "unmount", mnt)
	if sumFile(t, img) != before {
		t.Fatal("the refused apply reached the image through the mount's commit")
	}

	// killed in the commit: half the regions written (undone: old), or
	// committed but the undo record not yet written (finished: new)
	for _, c := range []struct{ point, want string }{{"mid-apply", "old"}, {"before-undo", "new"}} {
		t.Setenv("OFFVM_FAULT", c.point)
		r := runOffvm(t, "patch", "apply", bundle, img)
		t.Setenv("OFFVM_FAULT", "")
		if r.code == 0 {
			t.Fatalf("%s: apply was not killed: %q", c.point, r.out)
		}
		// a read-only open refuses the interrupted commit and names offvm
		// check, which finishes or undoes it
		if r := runOffvm(t, "patch", "status", bundle, img); r.code != 1 || !strings.Contains(r.out, "run offvm check "+img) {
			t.Errorf("%s: status before recovery: exit %d, %q", c.point, r.code, r.out)
		}
		t.Logf("%s: check: %s", c.point, mustOffvm(t, "check", img))
		status := mustOffvm(t, "patch", "status", bundle, img)
		scan := mustOffvm(t, "updates", "scan", newLCU, ssu, img)
		vol := ntfsVolume(t, img)
		_, staged := ntfsFile(t, vol, "/Windows/offvm/staged/KB5034439/Windows10.0-KB5034439-x64.msu")
		got := "torn"
		switch {
		case sumFile(t, img) == before && strings.HasPrefix(status, img+": not applied") && staged != nil &&
			strings.Contains(scan, img+": KB5034439: needed"):
			got = "old"
		case strings.HasPrefix(status, img+": applied (") && staged == nil && strings.Contains(scan, img+": KB5034439: staged") &&
			strings.Contains(scan, img+": KB5005112: staged"):
			got = "new"
		}
		if got != c.want {
			t.Errorf("killed at %s: the image is %s, want %s\nstatus: %s\nscan: %s", c.point, got, c.want, status, scan)
		}
		if got == "new" {
			mustOffvm(t, "rollback", img)
			if sumFile(t, img) != before {
				t.Fatalf("rollback after %s did not restore the image", c.point)
			}
		}
	}

	if out := mustOffvm(t, "patch", "apply", "--dry-run", bundle, img); !strings.Contains(out, `note         reboot pending: Component Based Servicing\RebootPending is set`) {
		t.Errorf("dry run into a pending image: %s", out)
	}
	out := mustOffvm(t, "patch", "apply", bundle, img)
	if !strings.HasPrefix(out, img+": applied (") || !strings.Contains(out, `); reboot pending: Component Based Servicing\RebootPending is set`) {
		t.Errorf("apply into a pending image: %s", out)
	}
}
