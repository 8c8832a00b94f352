package bitlocker

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/keys"
)

const synthRecovery = "471207-278498-422125-177177-561902-537405-468006-115005"

// TestSyntheticStatesMatchDislocker builds volumes in the states and
// modes the Windows samples lack (protection suspended, conversion in
// progress or paused, not yet encrypted, 256-bit keys, 4 KiB sectors) and
// compares every byte we read with dislocker-file's, and checks which of
// them offvm agrees to write.
func TestSyntheticStatesMatchDislocker(t *testing.T) {
	if RaceEnabled {
		t.Skip("sequential crypto: run without -race (make unit does)")
	}
	if _, err := exec.LookPath("dislocker-file"); err != nil {
		t.Skip("dislocker-file not installed (apt-get install dislocker)")
	}
	const mib = 1 << 20
	cases := []struct {
		name     string
		s        synth
		writable bool
	}{
		{"clear key xts-256", synth{method: AES256XTS, state: StateEncrypted, size: 8 * mib, encSize: 8 * mib}, true},
		{"clear key diffuser-256", synth{method: AES256Diffuser, state: StateEncrypted, size: 8 * mib, encSize: 8 * mib}, true},
		{"recovery cbc-256", synth{method: AES256CBC, state: StateEncrypted, size: 8 * mib, encSize: 8 * mib, recovery: synthRecovery}, true},
		{"4k sectors xts-128", synth{ss: 4096, method: AES128XTS, state: StateEncrypted, size: 8 * mib, encSize: 8 * mib}, true},
		{"conversion in progress", synth{method: AES128XTS, state: StateSwitching, size: 8 * mib, encSize: 5 * mib, convert: 64 << 10}, false},
		{"conversion paused", synth{method: AES128CBC, state: StatePaused, size: 8 * mib, encSize: 6*mib + 512}, false},
		{"not yet encrypted", synth{method: AES128XTS, state: StateDecrypted, size: 8 * mib, encSize: 0}, false},
		{"encrypt on write", synth{eow: true, method: AES128XTS, state: StateEncrypted, size: 8 * mib, encSize: 8 * mib}, false},
	}
	fvek := make([]byte, 64)
	rand.New(rand.NewSource(1)).Read(fvek)
	plain := make([]byte, 8*mib)
	rand.New(rand.NewSource(2)).Read(plain)
	ntfsBoot(plain, 8*mib)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.s.version, c.s.fvek = 2, fvek
			p := filepath.Join(t.TempDir(), "vol")
			if err := os.WriteFile(p, c.s.build(t, plain), 0o600); err != nil {
				t.Fatal(err)
			}
			var secrets []keys.Secret
			if c.s.recovery != "" {
				secrets = []keys.Secret{{Kind: keys.Recovery, Value: []byte(c.s.recovery), Line: 1}}
			}
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d, _, k, err := Open(fileDev{f}, secrets)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if want := map[bool]string{true: "recovery password", false: "clear key"}[c.s.recovery != ""]; k.Via != want {
				t.Errorf("unlocked with %q, want %q", k.Via, want)
			}
			got := make([]byte, d.Size())
			if _, err := d.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			// what the builder put there, as Windows shows it
			sameSectors(t, "the volume as built", got, c.s.expected(plain))
			// dislocker refuses a volume not yet encrypted and one whose
			// header announces encrypt-on-write without its EOW records
			if c.s.encSize > 0 && !c.s.eow {
				// dislocker stops near the encrypted size
				want := dislockerSynth(t, p, c.s)
				if int64(len(want)) < c.s.encSize || len(want) > len(got) {
					t.Fatalf("dislocker gives %d bytes", len(want))
				}
				sameSectors(t, "dislocker", got[:len(want)], want)
			}
			if c.writable != (d.ReadOnlyReason() == "") {
				t.Errorf("read-only reason %q, writable should be %v", d.ReadOnlyReason(), c.writable)
			}
			if _, err := d.WriteAt([]byte("x"), 7*mib); c.writable != (err == nil) {
				t.Errorf("write: %v, writable should be %v", err, c.writable)
			}
		})
	}
}

// TestDamagedMetadata: a damaged copy of the metadata is skipped for the
// next; with all three damaged the volume is refused with the reason.
func TestDamagedMetadata(t *testing.T) {
	s := synth{version: 2, method: AES128XTS, fvek: make([]byte, 32), state: StateEncrypted, size: 8 << 20, encSize: 8 << 20}
	vol := s.build(t, make([]byte, 8<<20))
	for i, off := range s.offsets() {
		vol[off+0x100] ^= 0xff // inside the datums
		_, _, _, err := Open(memDev(vol), nil)
		if i < 2 && err != nil {
			t.Fatalf("with %d damaged copies: %v", i+1, err)
		}
		if i == 2 && (err == nil || !strings.Contains(err.Error(), "damaged")) {
			t.Fatalf("with all copies damaged: %v", err)
		}
	}
	if _, _, _, err := Open(memDev(make([]byte, 4096)), nil); !errors.Is(err, ErrNotBitLocker) {
		t.Errorf("zeros: %v", err)
	}
}

// TestRecoveryPasswordRules: malformed recovery passwords are refused
// before any stretching.
func TestRecoveryPasswordRules(t *testing.T) {
	for _, c := range []struct {
		pw string
		ok bool
	}{
		{synthRecovery, true},
		{"471207-278498-422125-177177-561902-537405-468006-115006", false}, // not a multiple of 11
		{"471207-278498-422125-177177-561902-537405-468006", false},
		{"999999-278498-422125-177177-561902-537405-468006-115005", false}, // multiple of 11 but too big
	} {
		if _, err := RecoveryKey(c.pw); (err == nil) != c.ok {
			t.Errorf("%s: err %v", c.pw, err)
		}
	}
}

type memDev []byte

func (m memDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, os.ErrInvalid
	}
	return n, nil
}
func (m memDev) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }
func (m memDev) Size() int64                              { return int64(len(m)) }

// ntfsBoot makes the start of plain look like an NTFS boot sector of a
// volume of size bytes, which is where dislocker takes the volume's size.
func ntfsBoot(plain []byte, size int64) {
	copy(plain[3:], "NTFS    ")
	plain[11], plain[12] = 0, 2 // 512-byte sectors
	sectors := uint64(size/512 - 1)
	for i := 0; i < 8; i++ {
		plain[0x28+i] = byte(sectors >> (8 * i))
	}
}

func dislockerSynth(t *testing.T, p string, s synth) []byte {
	t.Helper()
	args := []string{"-q", "-r", "-s", "-V", p, "-c"}
	if s.recovery != "" {
		args[len(args)-1] = "-p" + s.recovery
	}
	out := filepath.Join(t.TempDir(), "dec")
	if b, err := exec.Command("dislocker-file", append(args, "--", out)...).CombinedOutput(); err != nil {
		t.Fatalf("dislocker-file: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func sameSectors(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d bytes, %s has %d", len(got), what, len(want))
	}
	for i := 0; i < len(got); i += 512 {
		if !bytes.Equal(got[i:i+512], want[i:i+512]) {
			t.Fatalf("bytes at %d differ from %s", i, what)
		}
	}
}
