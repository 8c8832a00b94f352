package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/keys"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// TestLinuxLUKSGuest: a Fedora-shaped disk whose root ext4 cryptsetup
// encrypted (LUKS2, Argon2id). Without keys the volume shows locked; with
// the passphrase in a --keys file it is inspected and written, and the
// written image, decrypted by python3-cryptography with the volume key
// luksDump reports, passes e2fsck and shows the file to debugfs. The
// LUKS header and keyslots are byte for byte as cryptsetup left them.
func TestLinuxLUKSGuest(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("NAME=\"Fedora Linux\"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME=\"Fedora Linux 40 (Server Edition)\"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("vault01\n"), 0o644))
	fs := makeExt4(t, root, 24, "root")
	plainCopy, _ := os.ReadFile(fs)
	v := testutil.LUKSEncrypt(t, fs, "open sesame", "--pbkdf", "argon2id", "--pbkdf-memory", "8192", "--pbkdf-force-iterations", "4", "--label", "vault-root")
	img := filepath.Join(t.TempDir(), "vault01.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 4, typ: "U"}, {sizeMiB: 56, typ: "L", fs: fs}})
	start := partOffsets(t, img)[1]

	im, err := mount.Open(img, mount.Options{ReadOnly: true})
	must(t, err)
	vol, err := im.Volume(2)
	must(t, err)
	if vol.Layer == nil || vol.Layer.Type != "luks2" || !vol.Layer.Locked || vol.FS != nil || vol.Layer.Description != "vault-root" {
		t.Fatalf("without keys: layer %+v fs %v", vol.Layer, vol.FS)
	}
	im.Close()

	kf := filepath.Join(t.TempDir(), "keys")
	uuid := strings.TrimSpace(run(t, "cryptsetup", "luksUUID", fs))
	must(t, os.WriteFile(kf, []byte("passphrase:not this one\n"+uuid+" passphrase:open sesame\n"), 0o600))
	set, err := keys.Load(kf)
	must(t, err)
	im, err = mount.Open(img, mount.Options{Keys: set, TmpDir: t.TempDir()})
	must(t, err)
	defer im.Close()
	inf := inspect.Describe(im)
	if !strings.Contains(jsonOf(t, inf.OS), "Fedora Linux 40 (Server Edition)") || !strings.Contains(jsonOf(t, inf.OS), "vault01") {
		t.Fatalf("inspect through LUKS: %s", jsonOf(t, inf.OS))
	}
	vol, err = im.Volume(2)
	must(t, err)
	if vol.Layer.Locked || vol.FSType != "ext4" || vol.ReadOnly != "" {
		t.Fatalf("with keys: layer %+v fs %s ro %q err %v", vol.Layer, vol.FSType, vol.ReadOnly, vol.Err)
	}
	w := vol.FS.(volume.Writer)
	etc, err := vol.FS.Lookup(vol.FS.Root(), "etc")
	must(t, err)
	a, err := w.Create(etc.Ino, "motd", 0o644)
	must(t, err)
	msg := bytes.Repeat([]byte("written through LUKS by offvm\n"), 300)
	_, err = w.WriteAt(a.Ino, msg, 0)
	must(t, err)
	must(t, im.Sync())
	_, err = im.Commit()
	must(t, err)

	// decrypt the committed partition with the oracle and check it
	part := filepath.Join(t.TempDir(), "p2.img")
	run(t, "dd", "if="+img, "of="+part, "bs=1M", "skip="+strconvItoa(start>>20), "count=56", "status=none")
	got, _ := os.ReadFile(part)
	orig, _ := os.ReadFile(fs)
	if !bytes.Equal(got[:v.Offset], orig[:v.Offset]) {
		t.Fatal("the LUKS header or keyslots changed")
	}
	plain := filepath.Join(t.TempDir(), "plain.ext4")
	must(t, os.WriteFile(plain, make([]byte, len(plainCopy)), 0o600))
	(&testutil.LUKSVolume{Path: part, Key: v.Key, Offset: v.Offset, Sector: v.Sector, Cipher: v.Cipher, Version: 2}).Crypt(t, "dec", plain)
	if out, err := exec.Command("e2fsck", "-fn", plain).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn of the decrypted partition: %v\n%s", err, out)
	}
	if got := run(t, "debugfs", "-R", "cat /etc/motd", plain); !strings.HasSuffix(got, "\n"+string(msg)) {
		t.Errorf("debugfs cat /etc/motd: %d bytes, want %d", len(got), len(msg))
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}
