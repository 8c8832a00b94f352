// Package bltest builds full-size BitLocker test volumes from the
// Windows-made samples of ../shared/corpus/bitlocker, whose NTFS was cut
// away: the sample's boot sector and metadata (and so its protectors and
// volume key) are kept, the volume is grown back to the size its metadata
// gives, and a file system image made by a real tool is encrypted into
// it. Tests check every volume built here with dislocker before use.
package bltest

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/bitlocker"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/keys"
)

// Sample is one corpus volume and a secret that opens it.
type Sample struct {
	Name   string // file name without .bin.gz
	Secret string // a line of a keys file
	// Dislocker is the dislocker option that opens it.
	Dislocker []string
}

// Samples are the corpus volumes with a password protector.
var Samples = map[string]Sample{
	"aes_128":          {"aes_128", "password:password12!@", []string{"-upassword12!@"}},
	"aes_128_diffuser": {"aes_128_diffuser", "password:password12!@", []string{"-upassword12!@"}},
	"aes-xts_128":      {"aes-xts_128", "password:password12!@", []string{"-upassword12!@"}},
}

// MaxFS is the largest file system image that fits in every sample before
// its first metadata region.
const MaxFS = 32 << 20

// Unpack copies the sample's raw volume to dst.
func Unpack(t testing.TB, s Sample, dst string) {
	t.Helper()
	src := testutil.Corpus(t, filepath.Join("bitlocker", s.Name+".bin.gz"))
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	w, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := io.Copy(w, z); err != nil {
		t.Fatalf("%s: %v", src, err)
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

// Build writes to dst a full BitLocker volume made from sample s with the
// file system image fsImage (at most MaxFS bytes) encrypted at its start,
// and returns the volume's size.
func Build(t testing.TB, s Sample, fsImage, dst string) int64 {
	t.Helper()
	Unpack(t, s, dst)
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, m, err := bitlocker.ReadMetadata(fileDev{f})
	if err != nil {
		t.Fatalf("%s: %v", dst, err)
	}
	size := int64(m.EncryptedSize)
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	set, err := keys.Parse(dst+".keys", []byte(s.Secret))
	if err != nil {
		t.Fatal(err)
	}
	dev, _, _, err := bitlocker.Open(fileDev{f}, set.Secrets)
	if err != nil {
		t.Fatalf("%s: %v", dst, err)
	}
	if r := dev.ReadOnlyReason(); r != "" {
		t.Fatalf("%s: %s", dst, r)
	}
	fs, err := os.ReadFile(fsImage)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) > MaxFS {
		t.Fatalf("%s: %d bytes, at most %d fit", fsImage, len(fs), MaxFS)
	}
	if _, err := dev.WriteAt(fs, 0); err != nil {
		t.Fatalf("encrypting %s into %s: %v", fsImage, dst, err)
	}
	return size
}
