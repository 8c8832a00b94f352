package bitlocker_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/bitlocker"
	"github.com/offvm/offvm/bitlocker/bltest"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/keys"
)

// dislockerFile decrypts vol with dislocker into a new file and reads it.
func dislockerFile(t *testing.T, vol string, s bltest.Sample) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dislocker-file")
	args := append(append([]string{"-q", "-r", "-V", vol}, s.Dislocker...), "--", out)
	if b, err := exec.Command("dislocker-file", args...).CombinedOutput(); err != nil {
		t.Fatalf("dislocker-file %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncryptedWritesReadByDislocker: an NTFS made by mkntfs (with a file
// put in by ntfscp) is encrypted into each Windows-made sample by our
// writer; dislocker must decrypt it to the same bytes, and ntfscat (of
// ntfs-3g) must read the file back from dislocker's output. Then partial
// sector writes are read back by dislocker too, and writes into the
// metadata are refused.
func TestEncryptedWritesReadByDislocker(t *testing.T) {
	if bitlocker.RaceEnabled {
		t.Skip("sequential crypto: run without -race (make unit does)")
	}
	testutil.RequireTool(t, "dislocker-file", "dislocker")
	testutil.RequireTool(t, "mkntfs", "ntfs-3g")
	dir := t.TempDir()
	fsImg := filepath.Join(dir, "ntfs.img")
	must(t, os.WriteFile(fsImg, nil, 0o644))
	must(t, os.Truncate(fsImg, bltest.MaxFS))
	testutil.Run(t, "mkntfs", "-q", "-F", "-Q", "-L", "BLTEST", fsImg)
	payload := bytes.Repeat([]byte("offvm wrote this through BitLocker\n"), 3000)
	src := filepath.Join(dir, "payload.txt")
	must(t, os.WriteFile(src, payload, 0o644))
	testutil.Run(t, "ntfscp", "-q", fsImg, src, "payload.txt")
	plain, err := os.ReadFile(fsImg)
	must(t, err)

	for _, name := range []string{"aes_128", "aes_128_diffuser", "aes-xts_128"} {
		s := bltest.Samples[name]
		t.Run(name, func(t *testing.T) {
			vol := filepath.Join(t.TempDir(), name+".bin")
			size := bltest.Build(t, s, fsImg, vol)
			got := dislockerFile(t, vol, s)
			if int64(len(got)) != size {
				t.Fatalf("dislocker volume of %d bytes, built %d", len(got), size)
			}
			if !bytes.Equal(got[:len(plain)], plain) {
				t.Fatalf("dislocker does not decrypt the NTFS we encrypted")
			}
			out := filepath.Join(t.TempDir(), "vol.ntfs")
			must(t, os.WriteFile(out, got, 0o600))
			if cat := testutil.Run(t, "ntfscat", out, "payload.txt"); cat != string(payload) {
				t.Fatalf("ntfscat read %d bytes, want %d", len(cat), len(payload))
			}

			f, err := os.OpenFile(vol, os.O_RDWR, 0)
			must(t, err)
			defer f.Close()
			set, err := keys.Parse("keys", []byte(s.Secret))
			must(t, err)
			dev, _, _, err := bitlocker.Open(fileDev{f}, set.Secrets)
			must(t, err)
			// unaligned, across sectors, and into the relocated first sectors
			edits := []struct {
				off  int64
				data string
			}{{20<<20 + 300, "across a sector boundary " + string(bytes.Repeat([]byte{'x'}, 600))}, {1000, "in the relocated header"}}
			for _, e := range edits {
				if _, err := dev.WriteAt([]byte(e.data), e.off); err != nil {
					t.Fatalf("write at %d: %v", e.off, err)
				}
			}
			for _, r := range dev.Reserved() {
				if _, err := dev.WriteAt([]byte{1}, r[0]+5); err == nil {
					t.Errorf("a write at %d into BitLocker's own region [%d,%d) was accepted", r[0]+5, r[0], r[1])
				}
			}
			got = dislockerFile(t, vol, s)
			for _, e := range edits {
				if g := string(got[e.off : e.off+int64(len(e.data))]); g != e.data {
					t.Errorf("dislocker reads %q at %d, we wrote %q", clip(g), e.off, clip(e.data))
				}
			}
			back := make([]byte, len(got))
			if _, err := dev.ReadAt(back, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, got) {
				t.Errorf("our reading of the written volume differs from dislocker's")
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

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
