package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// installHelper puts mount(8)'s helper, /sbin/mount.fuse.offvm, in place
// as make install does (a link to the binary under test), and puts back
// whatever was there when the test ends.
func installHelper(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	const helper = "/sbin/mount.fuse.offvm"
	old, err := os.Readlink(helper)
	had := err == nil
	if _, serr := os.Lstat(helper); serr == nil && !had {
		t.Skipf("%s exists and is not a link; not replacing it", helper)
	}
	os.Remove(helper)
	must(t, os.Symlink(offvm, helper))
	t.Cleanup(func() {
		os.Remove(helper)
		if had {
			os.Symlink(old, helper)
		}
	})
}

// waitPidFile reads a daemon's pid file and waits for it to exit.
func waitPidFile(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	if !waitGone(pid, 60*time.Second) {
		t.Fatalf("daemon %d still runs after umount", pid)
	}
}

// TestMountHelperAndFstab: mount -t fuse.offvm with -o options, and an
// fstab line (`mount MOUNTPOINT` with util-linux's --fstab), mount for
// real through the installed helper; umount commits, as fsck.fat and
// mtools see.
func TestMountHelperAndFstab(t *testing.T) {
	testutil.RequireTool(t, "mcopy", "mtools")
	installHelper(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), 10)
	lib := t.TempDir()
	img, off := fatDisk(t, lib, "vm.img", src)

	commitBy := func(label string, mountArgs []string, mnt, pidFile string) {
		t.Helper()
		if out, err := exec.Command("mount", mountArgs...).CombinedOutput(); err != nil {
			t.Fatalf("%s: mount %v: %v\n%s", label, mountArgs, err, out)
		}
		t.Cleanup(func() {
			if isMounted(mnt) {
				exec.Command("umount", "-l", mnt).Run()
			}
		})
		if !isMounted(mnt) {
			t.Fatalf("%s: %s is not mounted", label, mnt)
		}
		must(t, os.WriteFile(filepath.Join(mnt, "vm.img", "p1", label+".txt"), []byte("written through "+label+"\n"), 0o644))
		run(t, "umount", mnt)
		waitPidFile(t, pidFile)
		vol := extractPart(t, img, off, 48)
		run(t, "fsck.fat", "-n", vol)
		if got := run(t, "mtype", "-i", vol, "::/"+label+".txt"); !strings.Contains(got, "written through "+label) {
			t.Errorf("%s: the file written before umount reads %q", label, got)
		}
	}

	mnt := t.TempDir()
	pid1 := filepath.Join(t.TempDir(), "pid")
	commitBy("mount-t", []string{"-t", "fuse.offvm", lib, mnt, "-o", "rw,allow_other,pid_file=" + pid1}, mnt, pid1)

	mnt2 := t.TempDir()
	pid2 := filepath.Join(t.TempDir(), "pid")
	fstab := filepath.Join(t.TempDir(), "fstab")
	must(t, os.WriteFile(fstab, []byte(fmt.Sprintf("# offvm library\n%s  %s  fuse.offvm  defaults,noauto,allow_other,pid_file=%s  0 0\n", lib, mnt2, pid2)), 0o644))
	commitBy("fstab", []string{"--fstab", fstab, mnt2}, mnt2, pid2)

	// a read-only mount through the helper refuses writes
	mnt3 := t.TempDir()
	run(t, "mount", "-t", "fuse.offvm", lib, mnt3, "-o", "ro")
	err := os.WriteFile(filepath.Join(mnt3, "vm.img", "p1", "x.txt"), []byte("x"), 0o644)
	run(t, "umount", mnt3)
	if err == nil {
		t.Errorf("a write under -o ro succeeded")
	}
	// a mistake in the options is named
	out, err := exec.Command("mount", "-t", "fuse.offvm", lib, t.TempDir(), "-o", "frobnicate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "frobnicate") {
		t.Errorf("mount -o frobnicate: %v, %s", err, out)
	}
}

// TestInstallManCompletion: make install (DESTDIR, PREFIX) installs the
// binary, the helper link, man pages man(1) renders, and a bash
// completion that completes commands and subcommands.
func TestInstallManCompletion(t *testing.T) {
	testutil.RequireTool(t, "make", "make")
	dest := t.TempDir()
	cmd := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/usr")
	cmd.Dir = testutil.ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	if l, err := os.Readlink(filepath.Join(dest, "sbin", "mount.fuse.offvm")); err != nil || l != "/usr/bin/offvm" {
		t.Errorf("helper link: %q, %v", l, err)
	}
	bin := filepath.Join(dest, "usr", "bin", "offvm")
	if out, err := exec.Command(bin, "--help").Output(); err != nil || !strings.Contains(string(out), "COMMANDS") {
		t.Errorf("installed binary: %v", err)
	}
	testutil.RequireTool(t, "man", "man-db")
	man := filepath.Join(dest, "usr", "share", "man", "man1")
	for page, want := range map[string]string{
		"offvm.1": "patch", "offvm-mount.1": "fuse.offvm", "offvm-patch.1": "--shard",
		"offvm-report.1": "--merge", "offvm-ls.1": "--jobs", "offvm-reg.1": "export",
	} {
		c := exec.Command("bash", "-c", `man -l "$1" | col -bx`, "man", filepath.Join(man, page))
		c.Env = append(os.Environ(), "MANWIDTH=200")
		out, err := c.Output()
		if err != nil || !strings.Contains(string(out), "NAME") || !strings.Contains(string(out), want) {
			t.Errorf("man -l %s: %v; want NAME and %q in:\n%.600s", page, err, want, out)
		}
	}
	comp := filepath.Join(dest, "usr", "share", "bash-completion", "completions", "offvm")
	for line, want := range map[string]string{"offvm pa": "patch", "offvm patch ap": "apply", "offvm ls --sh": "--shard"} {
		words := strings.Fields(line)
		script := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; PATH=%q:$PATH _offvm; echo "${COMPREPLY[@]}"`,
			comp, strings.Join(words, " "), len(words)-1, filepath.Dir(bin))
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("completing %q: %v, %q; want %q", line, err, out, want)
		}
	}
}

// TestSystemdUnit: the example unit passes systemd-analyze verify (with
// the binary and the man pages it names in place).
func TestSystemdUnit(t *testing.T) {
	testutil.RequireTool(t, "systemd-analyze", "systemd")
	root := testutil.ModuleRoot()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", "offvm-library.service"))
	must(t, err)
	unit := string(b)
	for _, want := range []string{"Type=notify", "ExecStop=/usr/local/bin/offvm unmount", "ExecStart=/usr/local/bin/offvm mount --foreground"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "offvm-library.service")
	must(t, os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/local/bin/offvm", offvm)), 0o644))
	manDir := filepath.Join(dir, "man", "man1")
	run(t, offvm, "__docs", "man", manDir)
	c := exec.Command("systemd-analyze", "verify", p)
	c.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "man"))
	if out, err := c.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
