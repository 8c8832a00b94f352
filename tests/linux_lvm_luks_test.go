package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// TestLinuxLVMOnLUKS: Ubuntu's encrypted install: the first PV inside a
// LUKS2 volume (encrypted by cryptsetup itself), the root LV spanning it
// and a plain PV. With the passphrase the LVs assemble from the
// decrypted PV; a file written to root lands, after decryption by
// python3-cryptography, where lvm2 places the LV, and e2fsck accepts it.
func TestLinuxLVMOnLUKS(t *testing.T) {
	img := testutil.MakeLVMImage(t, t.TempDir(), "")
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("PRETTY_NAME=\"Ubuntu 24.04 LTS\"\nID=ubuntu\n"), 0o644))
	b, err := os.ReadFile(makeExt4(t, root, 60, "root"))
	must(t, err)
	img.WriteLV(t, "root", b)

	// encrypt PV 1 with cryptsetup: the PV's used extents (57 MiB) fit
	// in what is left after the 16 MiB header
	start, size := img.PV(0)
	pv := filepath.Join(t.TempDir(), "pv0")
	run(t, "dd", "if="+img.Path, "of="+pv, "bs=1M", "skip="+strconvItoa(start>>20), "count="+strconvItoa(size>>20), "status=none")
	v := testutil.LUKSEncrypt(t, pv, "ubuntu pass", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000")
	run(t, "dd", "if="+pv, "of="+img.Path, "bs=1M", "seek="+strconvItoa(start>>20), "count="+strconvItoa(size>>20), "conv=notrunc", "status=none")

	kf := filepath.Join(t.TempDir(), "keys")
	must(t, os.WriteFile(kf, []byte("passphrase:ubuntu pass\n"), 0o600))
	set, err := keys.Load(kf)
	must(t, err)
	im, err := mount.Open(img.Path, mount.Options{Keys: set, TmpDir: t.TempDir()})
	must(t, err)
	defer im.Close()
	vol, err := im.Volume(101)
	must(t, err)
	if vol.FS == nil || im.LVName(101) != img.VG+"/root" {
		t.Fatalf("root LV over the LUKS PV: %s %+v err %v", im.LVName(101), vol, vol.Err)
	}
	if got, err := volume.ReadFile(vol.FS, "etc/os-release", 4096); err != nil || !strings.Contains(string(got), "Ubuntu 24.04") {
		t.Fatalf("os-release: %q %v", got, err)
	}
	w := vol.FS.(volume.Writer)
	a, err := w.Create(vol.FS.Root(), "written-by-offvm", 0o644)
	must(t, err)
	msg := []byte(strings.Repeat("through LVM and LUKS\n", 500))
	_, err = w.WriteAt(a.Ino, msg, 0)
	must(t, err)
	must(t, im.Sync())
	_, err = im.Commit()
	must(t, err)

	// decrypt PV 1 back into a copy of the disk and read the LV there
	run(t, "dd", "if="+img.Path, "of="+pv, "bs=1M", "skip="+strconvItoa(start>>20), "count="+strconvItoa(size>>20), "status=none")
	plain := filepath.Join(t.TempDir(), "pv0.plain")
	must(t, os.WriteFile(plain, make([]byte, size-v.Offset), 0o600))
	(&testutil.LUKSVolume{Path: pv, Key: v.Key, Offset: v.Offset, Sector: v.Sector, Cipher: v.Cipher, Version: 2}).Crypt(t, "dec", plain)
	disk := filepath.Join(t.TempDir(), "plain-disk.img")
	run(t, "cp", "--sparse=always", img.Path, disk)
	run(t, "dd", "if="+plain, "of="+disk, "bs=1M", "seek="+strconvItoa(start>>20), "conv=notrunc", "status=none")
	fs := filepath.Join(t.TempDir(), "root.ext4")
	must(t, os.WriteFile(fs, img.ReadLV(t, disk, "root"), 0o600))
	if out, err := exec.Command("e2fsck", "-fn", fs).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn of the root LV: %v\n%s", err, out)
	}
	if got := run(t, "debugfs", "-R", "cat /written-by-offvm", fs); !strings.HasSuffix(got, "\n"+string(msg)) {
		t.Errorf("debugfs cat: %d bytes", len(got))
	}
}
