package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestLinuxLVMGuest: an Ubuntu-Server-shaped disk, the root file system
// on an LVM logical volume spread over two PVs (volume group made by
// lvm2's pvcreate, vgcreate and vgcfgrestore) and a striped data LV.
// inspect finds the guest on the LV; a write through the mount lands
// where lvm2 says the LV lies, and e2fsck and debugfs accept it.
func TestLinuxLVMGuest(t *testing.T) {
	lib := t.TempDir()
	img := testutil.MakeLVMImage(t, t.TempDir(), "")
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("web01\n"), 0o644))
	writeFile(t, filepath.Join(root, "usr", "lib", "big.so"), 5<<20)
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "srv", "blob"), 3<<20)
	for lv, fs := range map[string]string{"root": makeExt4(t, root, 60, "root"), "data": makeExt4(t, data, 32, "data")} {
		b, err := os.ReadFile(fs)
		must(t, err)
		img.WriteLV(t, lv, b)
	}
	path := filepath.Join(lib, "web01.img")
	must(t, os.Rename(img.Path, path))
	before := img.Report(t, path)

	var inf struct {
		OS struct {
			ProductName string `json:"product_name"`
			Hostname    string `json:"hostname"`
			System      string `json:"system_partition"`
		} `json:"os"`
		Partitions []struct {
			Number     int     `json:"number"`
			Type       string  `json:"type"`
			Filesystem *string `json:"filesystem"`
			Writable   bool    `json:"writable"`
		} `json:"partitions"`
	}
	out := mustOffvm(t, "inspect", "--json", path)
	must(t, json.Unmarshal([]byte(out), &inf))
	if inf.OS.ProductName != "Ubuntu 24.04.1 LTS" || inf.OS.Hostname != "web01" || inf.OS.System != "p101" {
		t.Fatalf("inspect: %+v\n%s", inf.OS, out)
	}
	lvs := map[int]string{}
	for _, p := range inf.Partitions {
		if p.Filesystem != nil {
			lvs[p.Number] = p.Type + " " + *p.Filesystem
		}
	}
	// data sorts before root: p100 is data (striped), p101 root (linear)
	if lvs[100] != "LVM2 striped logical volume ext4" || lvs[101] != "LVM2 linear logical volume ext4" {
		t.Fatalf("partitions: %v\n%s", lvs, out)
	}

	mnt := mountLib(t, lib)
	if l, err := os.Readlink(filepath.Join(mnt, "web01.img", "lv-"+strings.ReplaceAll(img.VG, "-", "--")+"-root")); err != nil || l != "p101" {
		t.Fatalf("lv- link: %q %v", l, err)
	}
	p := filepath.Join(mnt, "web01.img", "lv-"+strings.ReplaceAll(img.VG, "-", "--")+"-root")
	if got, err := os.ReadFile(filepath.Join(p, "usr", "lib", "big.so")); err != nil || len(got) != 5<<20 {
		t.Fatalf("big.so through the LV: %d bytes, %v", len(got), err)
	}
	want, _ := os.ReadFile(filepath.Join(data, "srv", "blob"))
	if got, err := os.ReadFile(filepath.Join(mnt, "web01.img", "p100", "srv", "blob")); err != nil || string(got) != string(want) {
		t.Fatalf("blob through the striped LV differs (%d bytes, %v)", len(got), err)
	}
	must(t, os.WriteFile(filepath.Join(p, "etc", "motd"), []byte("patched by offvm on LVM\n"), 0o644))
	big := make([]byte, 8<<20) // spills past the first PV's 40 MiB
	for i := range big {
		big[i] = byte(i / 4093)
	}
	must(t, os.WriteFile(filepath.Join(p, "opt-agent"), big, 0o755))
	mustOffvm(t, "unmount", mnt)

	for _, lv := range []string{"root", "data"} {
		part := filepath.Join(t.TempDir(), lv+".ext4")
		must(t, os.WriteFile(part, img.ReadLV(t, path, lv), 0o600))
		if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
			t.Fatalf("e2fsck -fn %s LV after the commit: %v\n%s", lv, err, out)
		}
		if lv == "root" {
			if got := run(t, "debugfs", "-R", "cat /etc/motd", part); !strings.Contains(got, "patched by offvm on LVM") {
				t.Errorf("debugfs cat /etc/motd: %q", got)
			}
			dump := filepath.Join(t.TempDir(), "agent")
			run(t, "debugfs", "-R", "dump /opt-agent "+dump, part)
			if got, _ := os.ReadFile(dump); string(got) != string(big) {
				t.Errorf("opt-agent as debugfs dumps it differs (%d bytes)", len(got))
			}
		}
	}
	// the metadata is never rewritten: lvm2 reads the same group, same seqno
	if after := img.Report(t, path); after != before || !strings.Contains(before, "root") {
		t.Errorf("lvs before:\n%s\nafter:\n%s", before, after)
	}
}
