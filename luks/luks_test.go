package luks

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

func openFile(t *testing.T, p string) *testutil.FileDevice { return testutil.OpenDevice(t, p, true) }

func plainFS(t *testing.T, dir string, blockSize string) string {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	b := make([]byte, 300000)
	rand.New(rand.NewSource(3)).Read(b)
	os.WriteFile(filepath.Join(src, "etc", "blob"), b, 0o644)
	p := filepath.Join(dir, "plain.ext4")
	testutil.Run(t, "truncate", "-s", "8M", p)
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-b", blockSize, "-d", src, p)
	return p
}

// TestCryptsetupEncrypted: cryptsetup's own offline encryption of a plain
// ext4 (LUKS2; PBKDF2 and Argon2id keyslots; 512- and 4096-byte
// sectors): offvm finds cryptsetup's volume key and its decrypted bytes
// are the plain file system's.
func TestCryptsetupEncrypted(t *testing.T) {
	tests := []struct {
		name  string
		block string
		args  []string
	}{
		{"pbkdf2 512", "1024", []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "512"}},
		{"argon2id 4096", "4096", []string{"--pbkdf", "argon2id", "--pbkdf-memory", "8192", "--pbkdf-force-iterations", "4", "--sector-size", "4096"}},
		{"argon2i cbc-essiv", "1024", []string{"--pbkdf", "argon2i", "--pbkdf-memory", "8192", "--pbkdf-force-iterations", "4", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256", "--sector-size", "512"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := plainFS(t, dir, tc.block)
			want, _ := os.ReadFile(p)
			v := testutil.LUKSEncrypt(t, p, "s3cret pass", tc.args...)
			dev := openFile(t, p)
			h, err := ReadHeader(dev, dev.Size())
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != 2 || h.DataOffset != v.Offset || h.SectorSize != v.Sector || h.Cipher != v.Cipher {
				t.Fatalf("header %+v, cryptsetup says %+v", h, v)
			}
			if _, _, err := Open(dev, h, [][]byte{[]byte("wrong")}, true); !errors.Is(err, ErrNoKey) {
				t.Fatalf("wrong passphrase: %v", err)
			}
			d, slot, err := Open(dev, h, [][]byte{[]byte("wrong"), []byte("s3cret pass")}, true)
			if err != nil || slot != 0 {
				t.Fatalf("open: slot %d, %v", slot, err)
			}
			got := make([]byte, len(want))
			if _, err := d.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("decrypted bytes differ from the plain file system cryptsetup encrypted")
			}
			if _, err := d.WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("read-only device took a write")
			}
		})
	}
}

// TestLUKS1AndWrites: luksFormat'ed LUKS1 and LUKS2 headers; the data
// area filled by python3-cryptography with the volume key luksDump
// shows. offvm reads it back, writes at odd offsets, and the helper's
// decryption shows the writes; the header is untouched.
func TestLUKS1AndWrites(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"luks1 xts", []string{"--type", "luks1", "--pbkdf-force-iterations", "1000"}},
		{"luks1 cbc-essiv", []string{"--type", "luks1", "--pbkdf-force-iterations", "1000", "--cipher", "aes-cbc-essiv:sha256", "--key-size", "256", "--hash", "sha1"}},
		{"luks2 4096", []string{"--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "4096"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			v := testutil.LUKSFormat(t, dir, 24, "pass phrase", tc.args...)
			plain := make([]byte, 4<<20)
			rand.New(rand.NewSource(5)).Read(plain)
			pf := filepath.Join(dir, "plain")
			os.WriteFile(pf, plain, 0o600)
			v.Crypt(t, "enc", pf)
			dev := openFile(t, v.Path)
			hdr := make([]byte, v.Offset)
			dev.ReadAt(hdr, 0)
			h, err := ReadHeader(dev, dev.Size())
			if err != nil {
				t.Fatal(err)
			}
			key, _, err := h.Unlock(dev, []byte("pass phrase"))
			if err != nil || !bytes.Equal(key, v.Key) {
				t.Fatalf("volume key %x, cryptsetup's %x (%v)", key, v.Key, err)
			}
			d, _, err := Open(dev, h, [][]byte{[]byte("pass phrase")}, false)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(plain))
			if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("decrypted bytes differ (%v)", err)
			}
			rng := rand.New(rand.NewSource(6))
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := 0; i < 16; i++ { // parallel writers, each to its own range
				off, n := int64(i)*200000+int64(rng.Intn(9000)), 1+rng.Intn(70000)
				patch := make([]byte, n)
				rng.Read(patch)
				mu.Lock()
				copy(plain[off:], patch)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := d.WriteAt(patch, off); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			out := filepath.Join(dir, "out")
			os.WriteFile(out, make([]byte, len(plain)), 0o600)
			v.Crypt(t, "dec", out)
			if back, _ := os.ReadFile(out); !bytes.Equal(back, plain) {
				t.Fatal("python3-cryptography's decryption does not show offvm's writes")
			}
			after := make([]byte, v.Offset)
			dev.ReadAt(after, 0)
			if !bytes.Equal(hdr, after) {
				t.Fatal("header or keyslots changed")
			}
		})
	}
}

func TestCorruptHeaders(t *testing.T) {
	v1 := make([]byte, 4096)
	copy(v1, "LUKS\xba\xbe\x00\x01")
	v2 := make([]byte, 32768)
	copy(v2, "LUKS\xba\xbe\x00\x02")
	for i, b := range [][]byte{v1, v2, []byte("LUKS\xba\xbe\x00\x07")} {
		if _, err := ReadHeader(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if _, err := ReadHeader(bytes.NewReader(nil), 0); err == nil || errors.Is(err, io.EOF) && false {
		t.Error("empty device: no error")
	}
}

type failWrites struct{ *testutil.FileDevice }

func (failWrites) WriteAt([]byte, int64) (int, error) { return 0, syscall.EIO }

// TestWriteErrors: an I/O error under the encryption comes back to the
// writer; a write past the data segment is ENOSPC; reads past it EOF.
func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	v := testutil.LUKSFormat(t, dir, 20, "pw", "--type", "luks1", "--pbkdf-force-iterations", "1000")
	dev := openFile(t, v.Path)
	h, err := ReadHeader(dev, dev.Size())
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := Open(failWrites{dev}, h, [][]byte{[]byte("pw")}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		off  int64
		n    int
		want error
	}{{0, 512, syscall.EIO}, {100, 7, syscall.EIO}, {d.Size() - 10, 20, syscall.ENOSPC}} {
		if _, err := d.WriteAt(make([]byte, w.n), w.off); !errors.Is(err, w.want) {
			t.Errorf("write %d at %d: %v, want %v", w.n, w.off, err, w.want)
		}
	}
	if n, err := d.ReadAt(make([]byte, 100), d.Size()-50); n != 50 || err != io.EOF {
		t.Fatalf("read across the end: %d %v", n, err)
	}
}
