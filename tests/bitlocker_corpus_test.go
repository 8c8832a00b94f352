package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/bitlocker/bltest"
	"github.com/offvm/offvm/internal/testutil"
)

// TestBitLockerCorpusRaw mounts the Windows-made BitLocker volumes with
// one keys file (a recovery password, a .BEK by relative path, a password
// selected by one volume's GUID): raw/p0 of each unlocked volume is
// exactly what dislocker decrypts, a volume no secret fits is shown
// locked with its raw bytes and the reason, and a volume whose three
// metadata copies are damaged is refused with the cause while the others
// stay usable.
func TestBitLockerCorpusRaw(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "dislocker-file", "dislocker")
	bek := testutil.Corpus(t, "bitlocker/recovery_key.bek")
	lib := t.TempDir()
	vols := map[string]bltest.Sample{
		"recovery_password": {Name: "recovery_password", Dislocker: []string{"-p284867-596541-514998-422114-660297-261613-215424-199408"}},
		"recovery_key":      {Name: "recovery_key", Dislocker: []string{"-f", bek}},
		"aes-xts_128":       bltest.Samples["aes-xts_128"],
		"aes_128":           bltest.Samples["aes_128"],
	}
	for name, s := range vols {
		bltest.Unpack(t, s, filepath.Join(lib, name+".img"))
	}
	// damaged: every metadata copy has a flipped byte
	damaged := filepath.Join(lib, "damaged.img")
	bltest.Unpack(t, bltest.Samples["aes-xts_128"], damaged)
	f, err := os.OpenFile(damaged, os.O_RDWR, 0)
	must(t, err)
	for _, off := range []int64{35586048, 43278336, 50966528} {
		b := make([]byte, 1)
		f.ReadAt(b, off+0x100)
		b[0] ^= 0x55
		f.WriteAt(b, off+0x100)
	}
	f.Close()

	keyDir := t.TempDir()
	testutil.CopyFile(t, bek, filepath.Join(keyDir, "escrow.bek"))
	xtsGUID := "19540fda-3072-4554-9ddc-9df7343ef068"
	kf := filepath.Join(keyDir, "keys")
	must(t, os.WriteFile(kf, []byte("# escrowed secrets\n284867-596541-514998-422114-660297-261613-215424-199408\nbek:escrow.bek\n{"+
		strings.ToUpper(xtsGUID)+"} password:password12!@\n"), 0o600))

	// unlocking only reads: a read-write mount leaves every file as it was
	sums := map[string][32]byte{}
	mtimes := map[string]int64{}
	ents, err := os.ReadDir(lib)
	must(t, err)
	for _, e := range ents {
		p := filepath.Join(lib, e.Name())
		sums[p] = sumFile(t, p)
		st, err := os.Stat(p)
		must(t, err)
		mtimes[p] = st.ModTime().UnixNano()
	}
	defer func() {
		for p, sum := range sums {
			st, err := os.Stat(p)
			if err != nil || sumFile(t, p) != sum || st.ModTime().UnixNano() != mtimes[p] {
				t.Errorf("%s changed although only read", p)
			}
		}
	}()
	mnt := mountLib(t, lib, "--keys", kf)
	defer mustOffvm(t, "unmount", mnt)
	for name, s := range vols {
		dir := filepath.Join(mnt, name+".img")
		got, err := os.ReadFile(filepath.Join(dir, "raw", "p0"))
		must(t, err)
		js, err := os.ReadFile(filepath.Join(dir, "info.json"))
		must(t, err)
		p := parseBLInfo(t, string(js)).Partitions[0]
		if name == "aes_128" { // its password was given for another volume only
			orig, _ := os.ReadFile(filepath.Join(lib, name+".img"))
			if !p.Locked || p.Error == nil || !strings.Contains(*p.Error, "no secret in "+kf+" unlocks") {
				t.Errorf("%s: want locked with the reason, info %s", name, js)
			}
			if !bytes.Equal(got, orig) {
				t.Errorf("%s: raw/p0 of a locked volume is not its bytes on disk", name)
			}
			continue
		}
		if p.Locked || p.Encryption == nil || p.Encryption.UnlockedWith == "" {
			t.Errorf("%s: not unlocked: %s", name, js)
			continue
		}
		want, err := os.ReadFile(dislockerDecrypt(t, filepath.Join(lib, name+".img"), s))
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: raw/p0 (%d bytes) differs from dislocker's decryption (%d bytes)", name, len(got), len(want))
		}
		t.Logf("%s: unlocked with %s (%s), %d bytes as dislocker", name, p.Encryption.UnlockedWith, p.Encryption.Method, len(got))
	}
	js, err := os.ReadFile(filepath.Join(mnt, "damaged.img", "info.json"))
	must(t, err)
	var inf blInfo
	must(t, json.Unmarshal(js, &inf))
	if p := inf.Partitions[0]; p.Error == nil || !strings.Contains(*p.Error, "damaged BitLocker metadata") || !strings.Contains(*p.Error, "checksum") {
		t.Errorf("damaged metadata: %s", js)
	}
	if js := string(blRead(t, filepath.Join(mnt, "aes-xts_128.img", "info.json"))); !strings.Contains(js, `"unlocked_with": "password"`) {
		t.Errorf("the GUID-selected password did not open its volume: %s", js)
	}
	if strings.Contains(string(blRead(t, filepath.Join(mnt, "recovery_password.img", "info.json"))), "284867") {
		t.Errorf("info.json shows a recovery password")
	}
}

func blRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}
