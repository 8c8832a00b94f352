package testutil

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// LUKSVolume is a LUKS header made by cryptsetup on a file, and what
// cryptsetup says of it.
type LUKSVolume struct {
	Path, Passphrase, Cipher string
	Key                      []byte // as luksDump --dump-volume-key shows it
	Offset                   int64
	Sector                   int
	Version                  int
}

// LUKSFormat runs cryptsetup luksFormat on a new file of sizeMiB with the
// extra arguments (--type, --cipher, --pbkdf ...) and reads its volume key.
func LUKSFormat(t testing.TB, dir string, sizeMiB int, pass string, args ...string) *LUKSVolume {
	t.Helper()
	RequireTool(t, "cryptsetup", "cryptsetup-bin")
	v := &LUKSVolume{Path: filepath.Join(dir, "luks.img"), Passphrase: pass}
	Run(t, "truncate", "-s", strconv.Itoa(sizeMiB)+"M", v.Path)
	pw := filepath.Join(dir, "pass")
	if err := os.WriteFile(pw, []byte(pass), 0o600); err != nil {
		t.Fatal(err)
	}
	Run(t, "cryptsetup", append(append([]string{"luksFormat", "-q", "--key-file", pw}, args...), v.Path)...)
	v.readDump(t, pw)
	return v
}

// LUKSEncrypt encrypts a plain file system in place with cryptsetup's
// own offline encryption (reencrypt --encrypt, LUKS2, no device-mapper
// needed): the header goes before the data, which moves 16 MiB on.
func LUKSEncrypt(t testing.TB, plainFS, pass string, args ...string) *LUKSVolume {
	t.Helper()
	RequireTool(t, "cryptsetup", "cryptsetup-bin")
	st, err := os.Stat(plainFS)
	if err != nil {
		t.Fatal(err)
	}
	Run(t, "truncate", "-s", strconv.FormatInt(st.Size()+32<<20, 10), plainFS)
	pw := filepath.Join(filepath.Dir(plainFS), "pass")
	if err := os.WriteFile(pw, []byte(pass), 0o600); err != nil {
		t.Fatal(err)
	}
	Run(t, "cryptsetup", append(append([]string{"reencrypt", "--encrypt", "-q", "--type", "luks2", "--reduce-device-size", "32M", "--key-file", pw}, args...), plainFS)...)
	v := &LUKSVolume{Path: plainFS, Passphrase: pass}
	v.readDump(t, pw)
	return v
}

func (v *LUKSVolume) readDump(t testing.TB, pw string) {
	t.Helper()
	out := Run(t, "cryptsetup", "luksDump", "-q", "--dump-volume-key", "--key-file", pw, v.Path)
	var hexKey strings.Builder
	inKey := false
	for _, l := range strings.Split(out, "\n") {
		k, val, _ := strings.Cut(l, ":")
		switch {
		case strings.TrimSpace(k) == "MK dump":
			inKey = true
			hexKey.WriteString(val)
		case inKey && strings.HasPrefix(l, "\t\t"):
			hexKey.WriteString(l)
		default:
			inKey = false
		}
	}
	key, err := hex.DecodeString(strings.Join(strings.Fields(hexKey.String()), ""))
	if err != nil || len(key) == 0 {
		t.Fatalf("volume key from luksDump: %v\n%s", err, out)
	}
	v.Key = key
	for _, l := range strings.Split(Run(t, "cryptsetup", "luksDump", v.Path), "\n") {
		k, val, _ := strings.Cut(strings.TrimSpace(l), ":")
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "Version":
			v.Version, _ = strconv.Atoi(f[0])
		case "Cipher name":
			v.Cipher = f[0]
		case "Cipher mode":
			v.Cipher += "-" + f[0]
		case "Payload offset":
			n, _ := strconv.ParseInt(f[0], 10, 64)
			v.Offset, v.Sector = n*512, 512
		case "offset":
			if v.Offset == 0 {
				v.Offset, _ = strconv.ParseInt(f[0], 10, 64)
			}
		case "sector":
			v.Sector, _ = strconv.Atoi(f[0])
		case "cipher":
			if v.Cipher == "" {
				v.Cipher = f[0]
			}
		}
	}
}

// Crypt runs the python3-cryptography helper: "enc" puts plain's bytes,
// encrypted, into the data area; "dec" decrypts the area into plain
// (as many bytes as plain holds).
func (v *LUKSVolume) Crypt(t testing.TB, mode, plain string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import cryptography").Run(); err != nil {
		t.Skip("python3-cryptography not installed (apt-get install python3-cryptography; make test installs it)")
	}
	unit := 512 // LUKS IVs count 512-byte sectors, even with 4096-byte ones
	Run(t, "/usr/bin/python3", filepath.Join(ModuleRoot(), "luks", "testdata", "luksdata.py"), mode, v.Path, plain,
		hex.EncodeToString(v.Key), strconv.FormatInt(v.Offset, 10), strconv.Itoa(v.Sector), strconv.Itoa(unit), v.Cipher)
}
