package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

const rockyFstab = `#
# /etc/fstab
# Created by anaconda on Tue Mar  5 10:00:00 2024
#
/dev/mapper/rl-root     /                       xfs     defaults        0 0
UUID=3f1c2b7e-9d1a-4e5b-8c2d-1a2b3c4d5e6f /boot  xfs     defaults        0 0
UUID=ABCD-1234          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
/dev/mapper/rl-home     /home                   xfs     defaults        0 0
/dev/mapper/rl-swap     none                    swap    defaults        0 0
LABEL=my\040data        /srv/my\040data         ext4    defaults        0 2
/dev/my-vg/lv-2         /var                    ext4    defaults        0 2
PARTUUID=0fc63daf-8483-4772-8e79-3d69d8477de4 /opt ext4 defaults 0 2
nas:/export             /mnt/nas                nfs     defaults        0 0
tmpfs                   /tmp                    tmpfs   defaults        0 0
`

func TestMountsOf(t *testing.T) {
	ids := []volID{
		{part: "p1", uuid: "abcd-1234"},
		{part: "p2", uuid: "3f1c2b7e-9d1a-4e5b-8c2d-1a2b3c4d5e6f", label: "boot"},
		{part: "p3", partUUID: "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
		{part: "p100", vg: "rl", lv: "home", uuid: "11111111-2222-3333-4444-555555555555"},
		{part: "p101", vg: "rl", lv: "root"},
		{part: "p102", vg: "rl", lv: "swap"},
		{part: "p103", vg: "my-vg", lv: "lv-2"},
		{part: "p104", label: "my data"},
	}
	got := mountsOf(parseFstab([]byte(rockyFstab)), ids)
	want := map[string]string{"/": "p101", "/boot": "p2", "/boot/efi": "p1", "/home": "p100",
		"/srv/my data": "p104", "/var": "p103", "/opt": "p3"}
	if len(got) != len(want) {
		t.Errorf("mounts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for _, c := range []struct {
		spec string
		id   volID
		want bool
	}{
		{"/dev/mapper/my--vg-lv--2", volID{vg: "my-vg", lv: "lv-2"}, true},
		{"/dev/mapper/my-vg-lv-2", volID{vg: "my-vg", lv: "lv-2"}, false},
		{"/dev/rl/root", volID{vg: "rl", lv: "root"}, true},
		{"/dev/disk/by-uuid/abcd-1234", volID{uuid: "abcd-1234"}, true},
		{`UUID="abcd-1234"`, volID{uuid: "abcd-1234"}, true},
		{"UUID=", volID{}, false},
		{"LABEL=", volID{}, false},
		{"/dev/sda1", volID{part: "p1"}, false}, // kernel names are not guessed
	} {
		if got := c.id.names(c.spec); got != c.want {
			t.Errorf("%+v names %q: %v, want %v", c.id, c.spec, got, c.want)
		}
	}
}

// TestFSUUID: the UUIDs offvm reads are the ones blkid reports.
func TestFSUUID(t *testing.T) {
	testutil.RequireTool(t, "blkid", "util-linux")
	for _, c := range []struct {
		tool string
		args []string
		env  []string
	}{
		{"mkfs.ext4", []string{"-q", "-F"}, nil},
		{"mkfs.xfs", []string{"-q", "-f"}, []string{"TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1"}},
		{"mkfs.vfat", []string{"-F", "32"}, nil},
		{"mkfs.vfat", []string{"-F", "16"}, nil},
		{"mkfs.btrfs", []string{"-q", "-f"}, nil},
	} {
		if _, err := exec.LookPath(c.tool); err != nil {
			t.Logf("%s not installed: skipped", c.tool)
			continue
		}
		img := filepath.Join(t.TempDir(), "fs")
		f, _ := os.Create(img)
		f.Truncate(128 << 20)
		f.Close()
		cmd := exec.Command(c.tool, append(c.args, img)...)
		cmd.Env = append(os.Environ(), c.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c.tool, err, out)
		}
		want := strings.TrimSpace(testutil.Run(t, "blkid", "-p", "-o", "value", "-s", "UUID", img))
		fh, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		got := fsUUID(fileDev{fh, 128 << 20})
		fh.Close()
		t.Logf("%s %v: %s", c.tool, c.args, got)
		if want == "" || !strings.EqualFold(got, want) {
			t.Errorf("%s %v: UUID %q, blkid %q", c.tool, c.args, got, want)
		}
	}
}

func FuzzParseFstab(f *testing.F) {
	f.Add([]byte(rockyFstab))
	f.Add([]byte("UUID=x / ext4\n\\04 /a\\0401 b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, e := range parseFstab(b) {
			if !strings.HasPrefix(e.dir, "/") {
				t.Fatalf("mount point %q", e.dir)
			}
		}
	})
}
