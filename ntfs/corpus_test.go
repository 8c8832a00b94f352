package ntfs

import (
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

type corpusImage struct {
	rel  string
	base int64 // byte offset of the NTFS volume in the image
}

var corpusImages = []corpusImage{
	{"ntfs/testfs1", 0},
	{"velociraptor/test.ntfs.raw.gz", 0},
	{"dfir_ntfs/ntfs_index.raw.gz", 65536},
	{"dfir_ntfs/ntfs3_attrlist.raw.gz", 0},
}

// corpusVolume copies a corpus image's NTFS volume into a temp file.
func corpusVolume(t testing.TB, c corpusImage) string {
	t.Helper()
	p := testutil.Corpus(t, c.rel)
	if filepath.Ext(p) == ".gz" {
		p = gunzipTemp(t, p)
	}
	in, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), "vol")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, c.base, 1<<40)); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

// TestCorpusMatchesNtfs3g walks each corpus volume with our engine and
// with a read-only ntfs-3g mount and wants the same tree.
func TestCorpusMatchesNtfs3g(t *testing.T) {
	requireNTFSTools(t)
	for _, c := range corpusImages {
		t.Run(c.rel, func(t *testing.T) {
			img := corpusVolume(t, c)
			mnt, unmount := mount3g(t, img, "ro")
			want := walkHost(t, mnt)
			unmount()
			v := openVol(t, img, 0, Options{ReadOnly: true})
			got := walkVolume(t, v)
			diffTrees(t, want, got)
			t.Logf("%s: %d paths agree with ntfs-3g", c.rel, len(got))
		})
	}
}

// TestCorpusFacts checks what the corpus README says of the Windows volumes.
func TestCorpusFacts(t *testing.T) {
	raw := gunzipTemp(t, testutil.Corpus(t, "velociraptor/test.ntfs.raw.gz"))
	if got := md5File(t, raw); got != "8b4382280340597b7930b4b34742afba" {
		t.Fatalf("test.ntfs.raw MD5 %s", got)
	}
	v := openVol(t, raw, 0, Options{ReadOnly: true})
	if v.Label() != "Test Volume" {
		t.Errorf("label %q", v.Label())
	}
	ones, err := v.Lookup(v.Root(), "ONES.bin")
	if err != nil {
		t.Fatal(err)
	}
	if ones.Ino != 38 || ones.Size != 2949120 {
		t.Errorf("ones.bin: ino %d size %d", ones.Ino, ones.Size)
	}
	in, _ := v.loadInode(38)
	if in.find(atAttrList, "") == nil || in.find(atData, "").flags&afCompressed == 0 {
		t.Errorf("ones.bin: want an attribute list and compressed $DATA")
	}
	a, err := v.Lookup(v.Root(), "Folder A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Lookup(a.Ino, "folder b")
	if err != nil {
		t.Fatal(err)
	}
	h, err := v.Lookup(b.Ino, "Hello world text document.txt")
	if err != nil {
		t.Fatal(err)
	}
	if h.Ino != 46 || h.Size != 12 {
		t.Errorf("hello: ino %d size %d", h.Ino, h.Size)
	}
	g, err := v.GetXattr(h.Ino, "user.goodbye.txt")
	if err != nil || len(g) != 20 {
		t.Errorf("goodbye.txt stream: %q %v", g, err)
	}
}

func md5File(t testing.TB, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := md5.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}
