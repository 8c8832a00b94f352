package bitlocker

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/keys"
)

const corpusDir = "../../shared/corpus/bitlocker"

// fileDev is a file as a device, for tests.
type fileDev struct{ f *os.File }

func (d fileDev) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d fileDev) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }
func (d fileDev) Size() int64 {
	st, err := d.f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// corpusVolume unpacks a corpus volume into the test's temp dir.
func corpusVolume(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join(corpusDir, name+".bin.gz")
	f, err := os.Open(src)
	if err != nil {
		t.Skipf("corpus absent (%v): the BitLocker volumes live in ../shared/corpus/bitlocker", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name+".bin")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, z); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return out
}

var corpus = []struct {
	name, secret, fvek, md5 string
	method                  uint16
	dislocker               []string
}{
	{"aes_128", "password:password12!@", "84c3a3157e5f21dee140005220bc940e", "3ebb7c7889cf522b94371575f51f32f5", AES128CBC, []string{"-upassword12!@"}},
	{"aes_128_diffuser", "password:password12!@", "10730f695df62a49cd3aa1b1c9ae3edf2229c338a3740830e2b19d2b83f9cada268af0e0613921085edc89e1b804de354fd265acf4e5c410b47764bb9565666b", "9ae65534c012cf4648c8d4b3996ab91d", AES128Diffuser, []string{"-upassword12!@"}},
	{"aes-xts_128", "password:password12!@", "4eb949c473f0edfc379ad041670ddb9c4da0abdb4482a2c8bb47250493aa1ed5", "3fbc21130a3b0f1b9c1d1a20b1c671cd", AES128XTS, []string{"-upassword12!@"}},
	{"recovery_password", "284867-596541-514998-422114-660297-261613-215424-199408", "", "424f078e6e04a2164cb44ecd19799330", AES128XTS, []string{"-p284867-596541-514998-422114-660297-261613-215424-199408"}},
	{"recovery_key", "bek:" + corpusDir + "/recovery_key.bek", "", "4781119d5141d58c7e93287d0ba8acec", AES128XTS, []string{"-f", corpusDir + "/recovery_key.bek"}},
}

func secretSet(t testing.TB, line string) *keys.Set {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "keys")
	if err := os.WriteFile(f, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(corpusDir + "/recovery_key.bek")
	s, err := keys.Parse(f, bytes.ReplaceAll([]byte(line), []byte(corpusDir+"/recovery_key.bek"), []byte(abs)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openCorpus(t testing.TB, path, secret string) (*Device, *VolumeKey, error) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h, m, err := ReadMetadata(f)
	if err != nil {
		return nil, nil, err
	}
	k, err := Unlock(m, secretSet(t, secret).For(m.VolumeGUID, m.Description))
	if err != nil {
		return nil, nil, err
	}
	d, err := NewDevice(fileDev{f}, h, m, k)
	return d, k, err
}

// TestCorpusMatchesDislocker unlocks each Windows-made volume with its
// protector and compares every decrypted byte with dislocker's.
func TestCorpusMatchesDislocker(t *testing.T) {
	if RaceEnabled {
		t.Skip("sequential crypto: run without -race (make unit does)")
	}
	if _, err := exec.LookPath("dislocker-file"); err != nil {
		t.Skip("dislocker-file not installed (apt-get install dislocker)")
	}
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			path := corpusVolume(t, c.name)
			raw, _ := os.ReadFile(path)
			if sum := md5.Sum(raw); hex.EncodeToString(sum[:]) != c.md5 {
				t.Fatalf("corpus file md5 %x, README says %s", sum, c.md5)
			}
			d, k, err := openCorpus(t, path, c.secret)
			if err != nil {
				t.Fatalf("unlock: %v", err)
			}
			if k.Method != c.method {
				t.Errorf("method %s, want %s", MethodName(k.Method), MethodName(c.method))
			}
			if c.fvek != "" && hex.EncodeToString(k.FVEK[:len(c.fvek)/2]) != c.fvek {
				t.Errorf("FVEK %x, want %s", k.FVEK, c.fvek)
			}
			ref := filepath.Join(t.TempDir(), "dislocker-file")
			args := append([]string{"-q", "-r", "-V", path}, c.dislocker...)
			if out, err := exec.Command("dislocker-file", append(args, "--", ref)...).CombinedOutput(); err != nil {
				t.Fatalf("dislocker-file: %v\n%s", err, out)
			}
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			if d.Size() != int64(len(want)) {
				t.Fatalf("size %d, dislocker %d", d.Size(), len(want))
			}
			got := make([]byte, d.Size())
			if _, err := d.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				for i := 0; i < len(got); i += 512 {
					if !bytes.Equal(got[i:i+512], want[i:i+512]) {
						t.Fatalf("first differing sector %d (of %d)", i/512, len(got)/512)
					}
				}
			}
			if string(got[3:11]) != "NTFS    " || string(got[0x2000:0x2005]) != "FILE0" {
				t.Errorf("decrypted volume does not start as NTFS: %q %q", got[3:11], got[0x2000:0x2005])
			}
		})
	}
}

// TestCorpusWrongSecrets: wrong passwords, a wrong recovery password and
// the key file where only the recovery password fits are all refused.
func TestCorpusWrongSecrets(t *testing.T) {
	if RaceEnabled {
		t.Skip("sequential crypto: run without -race (make unit does)")
	}
	cases := []struct{ vol, secret string }{
		{"aes_128", "password:password12!"},
		{"recovery_password", "284867-596541-514998-422114-660297-261613-215424-199419"},
		{"recovery_password", "bek:" + corpusDir + "/recovery_key.bek"},
		{"aes-xts_128", "284867-596541-514998-422114-660297-261613-215424-199408"},
	}
	for _, c := range cases {
		t.Run(c.vol+" "+c.secret[:8], func(t *testing.T) {
			_, _, err := openCorpus(t, corpusVolume(t, c.vol), c.secret)
			if !errors.Is(err, ErrNoSecret) {
				t.Fatalf("err = %v, want ErrNoSecret", err)
			}
		})
	}
}
