package updates

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/updates/msutest"
)

// extractAll reads every file of a cabinet with our reader.
func extractAll(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	c, err := OpenCabinet(f, st.Size(), path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for i := range c.Files {
		r, err := c.Open(&c.Files[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out[c.Files[i].Name] = b
	}
	return out
}

// TestCabinetAgainstCabextract: cabinets made by gcab, stored and MSZIP,
// with files spanning many 32 KiB blocks, read by us and by cabextract.
func TestCabinetAgainstCabextract(t *testing.T) {
	msutest.Need(t)
	if _, err := exec.LookPath("cabextract"); err != nil {
		t.Skip("cabextract not installed")
	}
	src := t.TempDir()
	random := make([]byte, 300000)
	rand.Read(random)
	files := map[string][]byte{
		"random.bin": random,
		"text.txt":   bytes.Repeat([]byte("update.mum assemblyIdentity Package_for_RollupFix\r\n"), 9000),
		"empty":      nil,
		"one":        []byte("x"),
	}
	var names []string
	for n, b := range files {
		must(t, os.WriteFile(filepath.Join(src, n), b, 0o644))
		names = append(names, n)
	}
	for _, compress := range []bool{false, true} {
		cab := filepath.Join(t.TempDir(), "t.cab")
		msutest.Gcab(t, cab, src, compress, names...)
		got := extractAll(t, cab)
		out := t.TempDir()
		if b, err := exec.Command("cabextract", "-q", "-d", out, cab).CombinedOutput(); err != nil {
			t.Fatalf("cabextract: %v\n%s", err, b)
		}
		for _, n := range names {
			want, err := os.ReadFile(filepath.Join(out, n))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[n], want) || !bytes.Equal(want, files[n]) {
				t.Errorf("compress=%v %s: we read %d bytes, cabextract %d, source %d", compress, n, len(got[n]), len(want), len(files[n]))
			}
		}
	}
}

// TestCabinetDamage: a flipped byte in compressed data fails the block
// checksum; a cut cabinet and a wrong signature are refused, naming the file.
func TestCabinetDamage(t *testing.T) {
	msutest.Need(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), bytes.Repeat([]byte("abcdefgh"), 20000), 0o644))
	cab := filepath.Join(t.TempDir(), "d.cab")
	msutest.Gcab(t, cab, src, true, "a.txt")
	good, _ := os.ReadFile(cab)
	cases := []struct {
		name string
		mod  func([]byte) []byte
		want string
	}{
		{"payload byte", func(b []byte) []byte { b[len(b)-20] ^= 0xff; return b }, "checksum"},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, "truncated"},
		{"signature", func(b []byte) []byte { b[0] = 'X'; return b }, "MSCF"},
		{"version", func(b []byte) []byte { b[25] = 9; return b }, "version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.cab")
			must(t, os.WriteFile(p, c.mod(append([]byte(nil), good...)), 0o644))
			err := readAllErr(p)
			if err == nil || !errors.Is(err, ErrCabinet) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v, want an ErrCabinet naming %s and %q", err, p, c.want)
			}
		})
	}
}

func readAllErr(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	c, err := OpenCabinet(f, st.Size(), path)
	if err != nil {
		return err
	}
	for i := range c.Files {
		r, err := c.Open(&c.Files[i])
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCabinetParallel: one parsed cabinet read by many goroutines at once
// (Scan and Stage share packages across images).
func TestCabinetParallel(t *testing.T) {
	msutest.Need(t)
	p := msutest.LCU17763.MSU(t, t.TempDir())
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	st, _ := f.Stat()
	c, err := OpenCabinet(f, st.Size(), p)
	must(t, err)
	want := extractAll(t, p)
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		go func() {
			for i := range c.Files {
				r, err := c.Open(&c.Files[i])
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(b, want[c.Files[i].Name]) {
					errs <- fmt.Errorf("%s: %d bytes, %v", c.Files[i].Name, len(b), err)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
