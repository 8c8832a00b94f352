package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// makeXFS makes an XFS of sizeMiB with mkfs.xfs (v5, CRCs) and fills it
// through the kernel's own mount with fill. xfsprogs refuses file
// systems under 300 MB unless its test-suite variables are set.
func makeXFS(t *testing.T, sizeMiB int, label string, fill func(root string)) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	img := filepath.Join(t.TempDir(), "xfs.img")
	sparseFile(t, img, int64(sizeMiB)*mib)
	cmd := exec.Command("mkfs.xfs", "-q", "-f", "-m", "crc=1", "-L", label, img)
	cmd.Env = append(os.Environ(), "TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	mnt := t.TempDir()
	run(t, "mount", "-o", "loop", img, mnt)
	fill(mnt)
	run(t, "umount", mnt)
	return img
}

// TestLinuxRockyGuest: a RHEL-family install, XFS root on LVM
// ("rl/root"), /boot a plain XFS partition. inspect names the guest from
// the LV's os-release; the tree shows through the mount with the
// kernel's bytes; a patch of existing files through the mount is committed, and
// xfs_repair and the kernel's mount see it.
func TestLinuxRockyGuest(t *testing.T) {
	lib := t.TempDir()
	img := testutil.MakeLVMImage(t, t.TempDir(), "")
	agent := make([]byte, 2<<20)
	for i := range agent {
		agent[i] = byte(i*13 + i>>9)
	}
	// the first LV ("data", p100) holds a backup copy of the root with
	// its os-release and fstab: the fstab, not the order, says / is p101
	backupUUID := "6b1f3a52-6d0e-4c1e-9a43-0d2f6e1c7b10"
	fstab := "/dev/mapper/" + img.VG + "-root / xfs defaults 0 0\n" +
		"UUID=" + backupUUID + " /srv/backup ext4 defaults 0 2\n" +
		"/dev/mapper/" + img.VG + "-swap none swap defaults 0 0\n"
	backup := filepath.Join(t.TempDir(), "backup")
	must(t, os.MkdirAll(filepath.Join(backup, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(backup, "etc", "os-release"), []byte("NAME=\"Rocky Linux\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (old copy)\"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(backup, "etc", "fstab"), []byte(fstab), 0o644))
	backupFS := filepath.Join(t.TempDir(), "backup.ext4")
	sparseFile(t, backupFS, img.Size("data"))
	run(t, "mkfs.ext4", "-q", "-F", "-U", backupUUID, "-d", backup, backupFS)
	bb, err := os.ReadFile(backupFS)
	must(t, err)
	img.WriteLV(t, "data", bb)
	rootFS := makeXFS(t, 60, "root", func(r string) {
		files := map[string]string{
			"etc/os-release": "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n",
			"etc/hostname":   "rocky9\n",
			"etc/fstab":      fstab,
		}
		for p, c := range files {
			must(t, os.MkdirAll(filepath.Join(r, filepath.Dir(p)), 0o755))
			must(t, os.WriteFile(filepath.Join(r, p), []byte(c), 0o644))
		}
		must(t, os.MkdirAll(filepath.Join(r, "opt", "agent"), 0o755))
		must(t, os.WriteFile(filepath.Join(r, "opt", "agent", "bin"), agent, 0o755))
		must(t, os.Symlink("/opt/agent/bin", filepath.Join(r, "opt", "agent-link")))
	})
	b, err := os.ReadFile(rootFS)
	must(t, err)
	img.WriteLV(t, "root", b)
	path := filepath.Join(lib, "rocky9.img")
	must(t, os.Rename(img.Path, path))

	out := mustOffvm(t, "inspect", "--json", path)
	var inf struct {
		OS struct {
			ProductName string            `json:"product_name"`
			Hostname    string            `json:"hostname"`
			System      string            `json:"system_partition"`
			Mounts      map[string]string `json:"mounts"`
		} `json:"os"`
		Partitions []struct {
			Number     int     `json:"number"`
			Filesystem *string `json:"filesystem"`
			Label      *string `json:"label"`
			ReadOnly   *string `json:"read_only_reason"`
		} `json:"partitions"`
	}
	must(t, json.Unmarshal([]byte(out), &inf))
	if inf.OS.ProductName != "Rocky Linux 9.4 (Blue Onyx)" || inf.OS.Hostname != "rocky9" || inf.OS.System != "p101" {
		t.Fatalf("inspect: %+v\n%s", inf.OS, out)
	}
	if len(inf.OS.Mounts) != 2 || inf.OS.Mounts["/"] != "p101" || inf.OS.Mounts["/srv/backup"] != "p100" {
		t.Fatalf("mounts from fstab: %v\n%s", inf.OS.Mounts, out)
	}
	found := false
	for _, p := range inf.Partitions {
		if p.Number == 101 && p.Filesystem != nil && *p.Filesystem == "xfs" && p.Label != nil && *p.Label == "root" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no xfs p101 labelled root:\n%s", out)
	}

	mnt := mountLib(t, lib)
	root := filepath.Join(mnt, "rocky9.img", "p101")
	for _, p := range infoOf(t, filepath.Join(mnt, "rocky9.img"))["partitions"].([]any) {
		if p := p.(map[string]any); p["number"] == 101.0 && p["read_only_reason"] != nil {
			t.Errorf("p101 read-only: %v", p["read_only_reason"])
		}
	}
	if got, err := os.ReadFile(filepath.Join(root, "opt", "agent", "bin")); err != nil || string(got) != string(agent) {
		t.Fatalf("agent through FUSE: %d bytes, %v", len(got), err)
	}
	if l, err := os.Readlink(filepath.Join(root, "opt", "agent-link")); err != nil || l != "/opt/agent/bin" {
		t.Fatalf("readlink: %q %v", l, err)
	}
	// a patch of existing files: rewritten, appended to, cut, touched
	must(t, os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("rocky9-patched.example.com\n"), 0o644))
	more := bytes.Repeat([]byte("agent v2 "), 150000)
	fh, err := os.OpenFile(filepath.Join(root, "opt", "agent", "bin"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = fh.Write(more)
	must(t, err)
	must(t, fh.Close())
	must(t, os.Truncate(filepath.Join(root, "etc", "fstab"), 10))
	stamp := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(root, "etc", "os-release"), stamp, stamp))
	// new files and a removal in short-form directories
	motd := bytes.Repeat([]byte("Patched by offvm\n"), 500)
	must(t, os.WriteFile(filepath.Join(root, "etc", "motd"), motd, 0o644))
	must(t, os.Remove(filepath.Join(root, "opt", "agent-link")))
	must(t, os.Mkdir(filepath.Join(root, "etc", "yum.repos.d"), 0o755))
	repo := []byte("[offvm]\nbaseurl=file:///srv/repo\n")
	must(t, os.WriteFile(filepath.Join(root, "etc", "yum.repos.d", "offvm.repo"), repo, 0o644))
	must(t, os.Rename(filepath.Join(root, "etc", "hostname"), filepath.Join(root, "etc", "yum.repos.d", "hostname.old")))
	must(t, os.Symlink("yum.repos.d/hostname.old", filepath.Join(root, "etc", "hostname")))
	// what rpm does after writing a file: owner, mode, SELinux label
	must(t, os.Chown(filepath.Join(root, "etc", "motd"), 1000, 48))
	must(t, os.Chmod(filepath.Join(root, "etc", "motd"), 0o750))
	label := "system_u:object_r:etc_t:s0"
	if out, err := exec.Command("setfattr", "-n", "security.selinux", "-v", label, filepath.Join(root, "etc", "motd")).CombinedOutput(); err != nil {
		t.Errorf("setfattr security.selinux through FUSE: %v %s", err, out)
	}
	if out, err := exec.Command("setfattr", "-n", "user.offvm", "-v", "patched", filepath.Join(root, "etc", "motd")).CombinedOutput(); err != nil {
		t.Errorf("setfattr user.offvm through FUSE: %v %s", err, out)
	}
	longLink := "/usr/lib/" + strings.Repeat("a-long-directory-name/", 20) + "target"
	must(t, os.Symlink(longLink, filepath.Join(root, "opt", "long-link")))
	mustOffvm(t, "unmount", mnt)
	part := filepath.Join(t.TempDir(), "root.xfs")
	must(t, os.WriteFile(part, img.ReadLV(t, path, "root"), 0o600))
	if out, err := exec.Command("xfs_repair", "-n", "-f", part).CombinedOutput(); err != nil {
		t.Fatalf("xfs_repair -n after the commit: %v\n%s", err, out)
	}
	// the kernel sees the committed changes
	kmnt := t.TempDir()
	run(t, "mount", "-o", "loop,ro", part, kmnt)
	defer run(t, "umount", kmnt)
	want := map[string]string{
		"etc/yum.repos.d/hostname.old": "rocky9-patched.example.com\n",
		"etc/hostname":                 "rocky9-patched.example.com\n",
		"etc/yum.repos.d/offvm.repo":   string(repo),
		"opt/agent/bin":                string(agent) + string(more),
		"etc/fstab":                    "/dev/mappe",
		"etc/motd":                     string(motd),
	}
	for p, w := range want {
		got, err := os.ReadFile(filepath.Join(kmnt, p))
		if err != nil || sha256.Sum256(got) != sha256.Sum256([]byte(w)) {
			t.Errorf("kernel reads %s: %d bytes (%v), want %d", p, len(got), err, len(w))
		}
	}
	if fi, err := os.Stat(filepath.Join(kmnt, "etc", "os-release")); err != nil || !fi.ModTime().Equal(stamp) {
		t.Errorf("os-release mtime: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(kmnt, "opt", "agent-link")); !os.IsNotExist(err) {
		t.Errorf("removed symlink: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(kmnt, "etc", "hostname")); err != nil || l != "yum.repos.d/hostname.old" {
		t.Errorf("kernel readlink etc/hostname: %q %v", l, err)
	}
	if l, err := os.Readlink(filepath.Join(kmnt, "opt", "long-link")); err != nil || l != longLink {
		t.Errorf("kernel readlink opt/long-link: %q %v", l, err)
	}
	fi, err := os.Stat(filepath.Join(kmnt, "etc", "motd"))
	if st, ok := fi.Sys().(*syscall.Stat_t); err != nil || !ok || st.Uid != 1000 || st.Gid != 48 || st.Mode&0o7777 != 0o750 {
		t.Errorf("kernel stat etc/motd: %+v %v", fi.Sys(), err)
	}
	for name, want := range map[string]string{"security.selinux": label, "user.offvm": "patched"} {
		if got := run(t, "getfattr", "--absolute-names", "--only-values", "-n", name, filepath.Join(kmnt, "etc", "motd")); got != want {
			t.Errorf("kernel getfattr %s: %q, want %q", name, got, want)
		}
	}
}
