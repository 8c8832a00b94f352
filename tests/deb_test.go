package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// debCache keeps the Debian guest's root tarball and the downloaded
// packages between runs: making them needs Debian's archive.
var debCache = filepath.Join(os.TempDir(), "offvm-test-cache")

// debGuestTar makes (once) a real Debian 12 root with mmdebstrap from
// Debian's archive, bookworm's main suite only, so that the updates of the
// host's apt sources are upgrades for it.
func debGuestTar(t *testing.T) string {
	t.Helper()
	testutil.RequireTool(t, "mmdebstrap", "mmdebstrap")
	tarball := filepath.Join(debCache, "bookworm-minbase.tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball
	}
	os.MkdirAll(debCache, 0o755)
	tmp := filepath.Join(debCache, "bookworm-minbase.part.tar") // mmdebstrap picks its output format by the name
	out, err := exec.Command("mmdebstrap", "--quiet", "--variant=minbase", "bookworm", tmp, "http://deb.debian.org/debian").CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		t.Skipf("mmdebstrap could not make a Debian guest (Debian's archive unreachable?): %v\n%s", err, lastLines(string(out), 5))
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

// debGuestImage is the guest disk made once per test binary; each test
// gets its own copy.
var debGuestImage struct {
	sync.Mutex
	path string
	off  int64
}

// debGuest copies into dir a qcow2 disk with a GPT partition holding the
// Debian root (mkfs.ext4 -d), and returns it with the partition's byte
// offset.
func debGuest(t *testing.T, dir string) (string, int64) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "dpkg", "dpkg")
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "debugfs", "e2fsprogs")
	g := &debGuestImage
	g.Lock()
	defer g.Unlock()
	if g.path == "" {
		shared, err := os.MkdirTemp("", "offvm-deb-guest-")
		if err != nil {
			t.Fatal(err)
		}
		g.path, g.off = makeDebGuest(t, shared)
	}
	img := filepath.Join(dir, filepath.Base(g.path))
	run(t, "cp", "--sparse=always", g.path, img)
	return img, g.off
}

// removeDebGuest removes the shared guest disk when the tests are done.
func removeDebGuest() {
	if debGuestImage.path != "" {
		os.RemoveAll(filepath.Dir(debGuestImage.path))
	}
}

func makeDebGuest(t *testing.T, dir string) (string, int64) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	os.Mkdir(root, 0o755)
	run(t, "tar", "-C", root, "--numeric-owner", "-xpf", debGuestTar(t))
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("deb01\n"), 0o644)
	fsimg := makeExt4(t, root, 700, "root")
	raw := filepath.Join(t.TempDir(), "disk.raw")
	sparseFile(t, raw, 702*mib)
	if out, err := sfdisk(raw, "label: gpt\nstart=2048, type=L\n").CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	off := partOffsets(t, raw)[0]
	placeImage(t, raw, fsimg, off)
	img := filepath.Join(dir, "deb01.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	return img, off
}

// guestStatus reads the guest's dpkg status versions from the tarball.
func guestVersion(t *testing.T, tarball, pkg string) string {
	out := run(t, "tar", "-xOf", tarball, "./var/lib/dpkg/status")
	for _, para := range strings.Split(out, "\n\n") {
		if strings.Contains(para, "Package: "+pkg+"\n") {
			for _, l := range strings.Split(para, "\n") {
				if v, ok := strings.CutPrefix(l, "Version: "); ok {
					return v
				}
			}
		}
	}
	return ""
}

// aptDownload fetches real packages with apt-get download (cached).
func aptDownload(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	dir := filepath.Join(debCache, "debs")
	os.MkdirAll(dir, 0o755)
	got := map[string]string{}
	for _, p := range pkgs {
		matches, _ := filepath.Glob(filepath.Join(dir, p+"_*.deb"))
		if len(matches) == 0 {
			cmd := exec.Command("apt-get", "download", "-q", p)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Skipf("apt-get download %s: %v\n%s", p, err, lastLines(string(out), 3))
			}
			matches, _ = filepath.Glob(filepath.Join(dir, p+"_*.deb"))
		}
		if len(matches) != 1 {
			t.Fatalf("apt-get download %s left %v", p, matches)
		}
		got[p] = matches[0]
	}
	return got
}

// debField reads a field of a package with dpkg-deb.
func debField(t *testing.T, deb, field string) string {
	return strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, field))
}

// buildDeb makes a package with dpkg-deb; postinst, when not empty, is its
// post-installation script.
func buildDeb(t *testing.T, dir, name, arch, depends, postinst string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/"+name), 0o755)
	os.WriteFile(filepath.Join(root, "usr/share/"+name+"/data"), []byte(name+"\n"), 0o644)
	ctl := "Package: " + name + "\nVersion: 1.0\nArchitecture: " + arch + "\nMaintainer: offvm tests <offvm@example.org>\nDescription: offvm test package\n"
	if depends != "" {
		ctl += "Depends: " + depends + "\n"
	}
	os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644)
	if postinst != "" {
		os.WriteFile(filepath.Join(root, "DEBIAN/postinst"), []byte(postinst), 0o755)
	}
	out := filepath.Join(dir, name+"_1.0_"+arch+".deb")
	run(t, "dpkg-deb", "--root-owner-group", "-b", root, out)
	return out
}

// debBundle writes a bundle holding debs.
func debBundle(t *testing.T, id string, debs ...string) string {
	t.Helper()
	b := filepath.Join(t.TempDir(), id)
	os.MkdirAll(filepath.Join(b, "debs"), 0o755)
	toml := fmt.Sprintf("id = %q\ntitle = \"Debian packages\"\n\n[applies]\nos = \"linux\"\ndistribution = \"debian\"\nmin_version = \"12\"\n", id)
	os.WriteFile(filepath.Join(b, "patch.toml"), []byte(toml), 0o644)
	for _, d := range debs {
		data, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(b, "debs", filepath.Base(d)), data, 0o644)
	}
	return b
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// guestFS copies the image's root partition out (qemu-img, not offvm).
func guestFS(t *testing.T, img string, off int64) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "out.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, raw)
	fsimg := filepath.Join(t.TempDir(), "root.ext4")
	run(t, "dd", "if="+raw, "of="+fsimg, "bs=1M", fmt.Sprintf("skip=%d", off/mib), "conv=sparse", "status=none")
	os.Remove(raw)
	return fsimg
}

func debugfsReq(t *testing.T, fsimg, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, fsimg).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %s: %v\n%s", req, err, out)
	}
	return string(out)
}

// upgradeCandidate picks a guest library the host's apt has a newer
// version of (Debian's updates since the point release).
func upgradeCandidate(t *testing.T, tarball string) string {
	for _, p := range []string{"liblzma5", "libzstd1", "zlib1g", "libpcre2-8-0", "libpam0g", "tzdata"} {
		have := guestVersion(t, tarball, p)
		out, _ := exec.Command("apt-cache", "policy", p).Output()
		var cand string
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate: "); ok {
				cand = v
			}
		}
		if have != "" && cand != "" && exec.Command("dpkg", "--compare-versions", cand, "gt", have).Run() == nil {
			return p
		}
	}
	t.Skip("the host's apt offers no newer version of any candidate guest package")
	return ""
}

// Debian packages applied to a real Debian guest through dpkg: a new
// package, one whose postinst runs a guest binary (update-alternatives),
// an upgrade (whose libc-bin trigger runs the guest's ldconfig). The
// result is checked by e2fsck, debugfs and the host's dpkg on a copy of
// the guest's database.
func TestDebApply(t *testing.T) {
	lib := t.TempDir()
	img, off := debGuest(t, lib)
	tarball := debGuestTar(t)
	up := upgradeCandidate(t, tarball)
	debs := aptDownload(t, "hello", "less", up)
	oldUp := guestVersion(t, tarball, up)
	newUp := debField(t, debs[up], "Version")
	bundle := debBundle(t, "deb-updates-1", debs["hello"], debs["less"], debs[up])
	before := fileSHA(t, img)

	dry := mustOffvm(t, "patch", "apply", "--dry-run", bundle, img)
	for _, want := range []string{"install", "hello " + debField(t, debs["hello"], "Version"), "upgrade", up + " " + oldUp + " -> " + newUp,
		"dpkg", "Selecting previously unselected package hello"} { // dpkg --dry-run's own account
		if !strings.Contains(dry, want) {
			t.Errorf("dry run: no %q in\n%s", want, dry)
		}
	}
	if fileSHA(t, img) != before {
		t.Fatal("--dry-run changed the image")
	}
	t.Logf("dry run:\n%s", dry)

	out := mustOffvm(t, "patch", "apply", bundle, img)
	if !strings.Contains(out, "applied") {
		t.Fatalf("patch apply: %s", out)
	}
	run(t, "qemu-img", "check", img)
	fsimg := guestFS(t, img, off)
	if out, err := exec.Command("e2fsck", "-fn", fsimg).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn after the packages: %v\n%s", err, out)
	}
	st := debugfsReq(t, fsimg, "stat /usr/bin/hello")
	if !strings.Contains(st, "Type: regular") || !strings.Contains(st, "Mode:  0755") {
		t.Errorf("/usr/bin/hello as debugfs sees it:\n%s", st)
	}
	if st := debugfsReq(t, fsimg, "stat /etc/alternatives/pager"); !strings.Contains(st, "Type: symlink") || !strings.Contains(st, "/usr/bin/less") {
		t.Errorf("less's postinst (update-alternatives) left no pager link:\n%s", st)
	}
	for _, gone := range []string{"/usr/sbin/policy-rc.d", "/proc/self"} {
		if st := debugfsReq(t, fsimg, "stat "+gone); !strings.Contains(st, "File not found") {
			t.Errorf("%s left in the guest:\n%s", gone, st)
		}
	}

	// the guest's dpkg database, read by the host's dpkg
	admin := filepath.Join(t.TempDir(), "dpkg") // rdump makes it
	debugfsReq(t, fsimg, "rdump /var/lib/dpkg "+filepath.Dir(admin))
	if _, err := os.Stat(filepath.Join(admin, "status")); err != nil {
		t.Fatalf("debugfs rdump of /var/lib/dpkg: %v", err)
	}
	list := run(t, "dpkg-query", "--admindir="+admin, "-W", "-f=${db:Status-Abbrev} ${Package} ${Version}\n", "hello", "less", up)
	for _, p := range []string{"hello", "less", up} {
		want := fmt.Sprintf("ii  %s %s", p, debField(t, debs[p], "Version"))
		if !strings.Contains(list, want) {
			t.Errorf("dpkg-query: no %q in\n%s", want, list)
		}
	}
	if audit := run(t, "dpkg", "--admindir="+admin, "--audit"); strings.TrimSpace(audit) != "" {
		t.Errorf("dpkg --audit on the guest's database:\n%s", audit)
	}
	rec := debugfsReq(t, fsimg, "cat /var/lib/offvm/patches/deb-updates-1")
	for _, want := range []string{"install hello", "upgrade " + up + " " + oldUp + " -> " + newUp} {
		if !strings.Contains(rec, want) {
			t.Errorf("record: no %q in\n%s", want, rec)
		}
	}

	var inf struct {
		Applications []struct {
			Name    string  `json:"name"`
			Version *string `json:"version"`
		} `json:"applications"`
		Patches []struct {
			ID string `json:"id"`
		} `json:"patches"`
	}
	if err := json.Unmarshal([]byte(mustOffvm(t, "inspect", "--json", img)), &inf); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, a := range inf.Applications {
		if a.Version != nil {
			seen[a.Name] = *a.Version
		}
	}
	if seen["hello"] == "" || seen[up] != newUp {
		t.Errorf("inspect: hello %q, %s %q (want %s)", seen["hello"], up, seen[up], newUp)
	}
	if len(inf.Patches) != 1 || inf.Patches[0].ID != "deb-updates-1" {
		t.Errorf("inspect patches: %+v", inf.Patches)
	}
	if again := mustOffvm(t, "patch", "apply", bundle, img); !strings.Contains(again, "already applied") {
		t.Errorf("second apply: %s", again)
	}
}

// A package dpkg cannot install (a failing postinst, a missing
// dependency) leaves the image byte-identical and names dpkg's reason.
func TestDebApplyFailure(t *testing.T) {
	lib := t.TempDir()
	img, _ := debGuest(t, lib)
	pkgs := t.TempDir()
	foreign := "arm64"
	if strings.TrimSpace(run(t, "dpkg", "--print-architecture")) == "arm64" {
		foreign = "amd64"
	}
	for _, c := range []struct{ name, arch, depends, postinst, want string }{
		{"offvm-fail", "all", "", "#!/bin/sh\necho failing on purpose >&2\nexit 1\n", "post-installation script subprocess returned error exit status 1"},
		{"offvm-needs", "all", "offvm-nonexistent", "", "dependency problems"},
		{"offvm-foreign", foreign, "", "", "does not match system"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bundle := debBundle(t, c.name, buildDeb(t, pkgs, c.name, c.arch, c.depends, c.postinst))
			before := fileSHA(t, img)
			r := runOffvm(t, "patch", "apply", bundle, img)
			if r.code != 1 || !strings.Contains(r.out+r.err, "failed") || !strings.Contains(r.out+r.err, c.want) {
				t.Errorf("patch apply: exit %d, want 1 with %q\nstdout: %s\nstderr: %s", r.code, c.want, r.out, r.err)
			}
			if after := fileSHA(t, img); after != before {
				t.Errorf("the failed apply changed the image: sha256 %s -> %s", before, after)
			}
		})
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// kill -9 of offvm while a maintainer script runs: the image is
// unchanged, the script and dpkg die with offvm (they run in a PID
// namespace whose init dies with it), and the image can be patched again.
func TestDebApplyKilled(t *testing.T) {
	lib := t.TempDir()
	img, _ := debGuest(t, lib)
	marker := "offvm-slow.postinst" // in the script's command line
	bundle := debBundle(t, "slow", buildDeb(t, t.TempDir(), "offvm-slow", "all", "", "#!/bin/sh\nsleep 120\n"))
	before := fileSHA(t, img)
	cmd := exec.Command(offvm, "patch", "apply", bundle, img)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForT(t, "the slow postinst", func() bool { return procWith(marker) })
	cmd.Process.Kill()
	cmd.Wait()
	t.Cleanup(func() { unmountDangling(t) })
	waitForT(t, "the postinst to die with offvm", func() bool { return !procWith(marker) })
	// nothing may be left blocked on the dead daemon's connection (a child
	// that inherited /dev/fuse kept it alive, and dpkg's exit then waited
	// forever for an answer in D state)
	if stuck := fuseBlockedAfter(5 * time.Second); len(stuck) > 0 {
		t.Errorf("processes left blocked on a FUSE connection after offvm died:\n%s", strings.Join(stuck, "\n"))
		abortDanglingConnections(t)
	}
	if after := fileSHA(t, img); after != before {
		t.Errorf("killed apply changed the image: sha256 %s -> %s", before, after)
	}
	unmountDangling(t)
	ok := debBundle(t, "after-kill", buildDeb(t, t.TempDir(), "offvm-ok", "all", "", ""))
	if out := mustOffvm(t, "patch", "apply", ok, img); !strings.Contains(out, "applied") {
		t.Errorf("apply after the kill: %s", out)
	}
}

// procWith says whether a process's command line holds s.
func procWith(s string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		if b, err := os.ReadFile(d); err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

func waitForT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if cond() {
			return
		}
		sleepMs(100)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// fuseBlockedAfter lists, after waiting up to d for them to go, the
// processes asleep uninterruptibly in a FUSE request (pid, state, wait
// channel, name).
func fuseBlockedAfter(d time.Duration) []string {
	var stuck []string
	for end := time.Now().Add(d); ; {
		stuck = stuck[:0]
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, st := range stats {
			b, err := os.ReadFile(st)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+3 >= len(b) || b[i+2] != 'D' {
				continue
			}
			dir := filepath.Dir(st)
			wchan, _ := os.ReadFile(dir + "/wchan")
			if w := string(wchan); strings.Contains(w, "request_wait_answer") || strings.Contains(w, "fuse") {
				stuck = append(stuck, fmt.Sprintf("%s D %s %s", filepath.Base(dir), w, b[bytes.IndexByte(b, '(')+1:i]))
			}
		}
		if len(stuck) == 0 || time.Now().After(end) {
			return stuck
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// abortDanglingConnections aborts the FUSE connections of the private
// trees a killed offvm left (by their device number in mountinfo: a stat
// of the mount point would block), so that a failing run frees what it
// blocked instead of leaving it to the machine.
func abortDanglingConnections(t *testing.T) {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || !strings.Contains(f[4], "offvm-dpkg-") || !strings.HasPrefix(f[2], "0:") {
			continue
		}
		abort := "/sys/fs/fuse/connections/" + strings.TrimPrefix(f[2], "0:") + "/abort"
		if err := os.WriteFile(abort, []byte("1"), 0o200); err != nil {
			t.Logf("aborting %s: %v", abort, err)
		}
	}
}

// unmountDangling detaches the private FUSE tree a killed offvm left.
func unmountDangling(t *testing.T) {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.Contains(f[1], "offvm-dpkg-") {
			if strings.Contains(f[1], "/proc") || strings.Contains(f[1], "/dev") || strings.Contains(f[1], "/sys") {
				t.Errorf("a guest bind mount outlived offvm: %s", f[1])
			}
			exec.Command("umount", "-l", f[1]).Run()
		}
	}
}
