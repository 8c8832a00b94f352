package mount

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/bitlocker/bltest"
	"github.com/offvm/offvm/keys"
)

// TestBitLockerLayer opens a Windows-made BitLocker volume as a bare
// image: locked without secrets (with its protectors), refused with a
// wrong one (named), unlocked with the right one, its raw view decrypted.
func TestBitLockerLayer(t *testing.T) {
	img := filepath.Join(t.TempDir(), "vol.img")
	bltest.Unpack(t, bltest.Samples["aes-xts_128"], img)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	set := func(line string) *keys.Set {
		s, err := keys.Parse("/etc/offvm/escrow.keys", []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name   string
		keys   *keys.Set
		locked bool
		err    string
	}{
		{"no keys", nil, true, ""},
		{"wrong password", set("password:wrong"), true, "no secret in /etc/offvm/escrow.keys unlocks BitLocker volume {19540fda-3072-4554-9ddc-9df7343ef068}"},
		{"other volume's secret", set("{00000000-0000-0000-0000-000000000001} password:password12!@"), true, ""},
		// the sample's NTFS was cut down by its source: unlocked, it fails
		// in the NTFS engine, not before
		{"right password", set("DESKTOP-QNI1MMF* password:password12!@"), false, "partition 0 (ntfs): ntfs: $MFT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im, err := Open(img, Options{ReadOnly: true, Keys: c.keys})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			v, err := im.Volume(0)
			if err != nil {
				t.Fatal(err)
			}
			if v.Layer == nil || v.Layer.Type != "bitlocker" || v.Layer.Locked != c.locked ||
				strings.Join(v.Layer.Protectors, ",") != "password" || v.Layer.Description != "DESKTOP-QNI1MMF TestVolume 10/8/2021" {
				t.Fatalf("layer %+v", v.Layer)
			}
			if (c.err == "") != (v.Err == nil) || (v.Err != nil && !strings.Contains(v.Err.Error(), c.err)) {
				t.Errorf("err %v, want %q", v.Err, c.err)
			}
			r, err := im.Raw(0)
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 512)
			if _, err := r.ReadAt(head, 0); err != nil {
				t.Fatal(err)
			}
			if c.locked {
				if v.FSType != "bitlocker" || r.Size() != int64(len(raw)) || string(head) != string(raw[:512]) {
					t.Errorf("locked: fs %q, raw %d bytes starting %q", v.FSType, r.Size(), head[3:11])
				}
				return
			}
			if v.FSType != "ntfs" || string(head[3:11]) != "NTFS    " || r.Size() != 65994752 || v.Layer.UnlockedWith != "password" {
				t.Errorf("unlocked: fs %q, raw %d bytes starting %q, layer %+v", v.FSType, r.Size(), head[3:11], v.Layer)
			}
			inf := im.Info()
			if p := inf.Partitions[0]; p.Locked || p.Encryption == nil || p.Encryption.Method != "AES-XTS 128" {
				t.Errorf("info %+v", p)
			}
		})
	}
}
