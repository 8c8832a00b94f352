package tests

import (
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// gunzipTo decompresses a corpus file into dir.
func gunzipTo(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
}

// ntfs3gMount mounts an NTFS volume (at byte offset off of img) read-only
// with ntfs-3g, the independent reader the mount is compared with.
func ntfs3gMount(t *testing.T, img string, off int64) string {
	t.Helper()
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	mnt := t.TempDir()
	if off != 0 { // ntfs-3g wants the volume itself: cut it out with dd
		vol := filepath.Join(t.TempDir(), "volume")
		run(t, "dd", "if="+img, "of="+vol, "bs=512", "skip="+itoa(off/512), "status=none")
		img = vol
	}
	args := []string{"-o", "ro", img, mnt}
	if out, err := exec.Command("ntfs-3g", args...).CombinedOutput(); err != nil {
		t.Fatalf("ntfs-3g %v: %v\n%s", args, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

func itoa(n int64) string { return strconvItoa(n) }

// TestCorpusNTFS reads volumes formatted by Windows (and one by mkntfs)
// through offvm and compares every name, size and byte with ntfs-3g's view
// of the same volume.
func TestCorpusNTFS(t *testing.T) {
	cases := []struct {
		file, name string
		gz         bool
		part       string
		off        int64
	}{
		{"ntfs/testfs1", "testfs1", false, "p0", 0},
		{"velociraptor/test.ntfs.raw.gz", "test.ntfs.raw", true, "p0", 0},
		{"dfir_ntfs/ntfs_index.raw.gz", "ntfs_index.raw", true, "p1", 65536},
		{"dfir_ntfs/ntfs3_attrlist.raw.gz", "ntfs3_attrlist.raw", true, "p0", 0},
	}
	lib := t.TempDir()
	for _, c := range cases {
		src := testutil.Corpus(t, c.file)
		dst := filepath.Join(lib, c.name)
		if c.gz {
			gunzipTo(t, src, dst)
		} else {
			b, _ := os.ReadFile(src)
			os.WriteFile(dst, b, 0o644)
		}
	}
	mnt := mountLib(t, lib, "--ro")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := ntfs3gMount(t, filepath.Join(lib, c.name), c.off)
			compareTrees(t, ref, filepath.Join(mnt, c.name, c.part))
		})
	}
	t.Run("facts", func(t *testing.T) {
		vol := filepath.Join(mnt, "test.ntfs.raw", "p0")
		st, err := os.Stat(filepath.Join(vol, "ones.bin"))
		if err != nil || st.Size() != 2949120 {
			t.Errorf("ones.bin (LZNT1, attribute list): %v, size %v; want 2,949,120 bytes", err, st)
		}
		out, err := exec.Command("getfattr", "--only-values", "-n", "user.goodbye.txt",
			filepath.Join(vol, "Folder A", "Folder B", "Hello world text document.txt")).Output()
		if err != nil || len(out) != 20 {
			t.Errorf("ADS goodbye.txt: %q, %v; want 20 bytes", out, err)
		}
	})
}
