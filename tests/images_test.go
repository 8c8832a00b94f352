package tests

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// Images for the tests are made here, at test time, by the real tools:
// sfdisk for tables, mkfs.vfat + mtools, mkntfs + ntfs-3g, mkfs.ext4 -d.

const mib = 1 << 20

// writeFile writes a file of n pseudo-random bytes (seeded by name, so a
// tree is the same on every run).
func writeFile(t testing.TB, path string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(int64(len(path) * 7919)))
	b := make([]byte, n)
	r.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// treeOptions choose what a source tree holds.
type treeOptions struct {
	bigDir   int  // entries in big/ (0: none)
	deep     int  // levels of deep/l1/l2/...
	unicode  bool // names outside ASCII
	symlinks bool
}

// makeTree builds a source tree on the host: files of edge sizes, nested
// directories, and what opts asks for.
func makeTree(t testing.TB, dir string, opts treeOptions) {
	t.Helper()
	for _, n := range []int{0, 1, 511, 512, 4095, 4096, 4097, 65537, 3*mib + 17} {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("size-%d.bin", n)), n)
	}
	writeFile(t, filepath.Join(dir, "Docs", "Mixed Case Name.TXT"), 1234)
	writeFile(t, filepath.Join(dir, "Docs", "sub dir", "inner.dat"), 70000)
	if opts.unicode {
		writeFile(t, filepath.Join(dir, "Überprüfung ñ 日本語.txt"), 333)
		writeFile(t, filepath.Join(dir, "Ελληνικά", "файл.txt"), 42)
	}
	if opts.bigDir > 0 {
		for i := 0; i < opts.bigDir; i++ {
			p := filepath.Join(dir, "big", fmt.Sprintf("entry-%05d-with-a-longer-name.txt", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(fmt.Sprintf("entry %d\n", i)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if opts.deep > 0 {
		p := filepath.Join(dir, "deep")
		for i := 1; i <= opts.deep; i++ {
			p = filepath.Join(p, fmt.Sprintf("level%02d", i))
		}
		writeFile(t, filepath.Join(p, "bottom.txt"), 99)
	}
	if opts.symlinks {
		if err := os.Symlink("size-1.bin", filepath.Join(dir, "link-to-file")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("Docs/sub dir", filepath.Join(dir, "link-to-dir")); err != nil {
			t.Fatal(err)
		}
	}
}

func sparseFile(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// makeExt4 makes an ext4 file system image holding src.
func makeExt4(t testing.TB, src string, sizeMiB int, label string) string {
	t.Helper()
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	img := filepath.Join(t.TempDir(), "ext4.img")
	sparseFile(t, img, int64(sizeMiB)*mib)
	run(t, "mkfs.ext4", "-q", "-F", "-L", label, "-d", src, img)
	return img
}

// makeFAT makes a FAT file system (bits 12, 16 or 32) holding src, copied
// in with mtools.
func makeFAT(t testing.TB, src string, sizeMiB, bits int, label string) string {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
	img := filepath.Join(t.TempDir(), "fat.img")
	sparseFile(t, img, int64(sizeMiB)*mib)
	run(t, "mkfs.vfat", "-F", fmt.Sprint(bits), "-n", label, img)
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		run(t, "mcopy", "-s", "-i", img, filepath.Join(src, e.Name()), "::/")
	}
	return img
}

// makeNTFS formats an NTFS file system and fills it through a real ntfs-3g
// mount: fill gets the mounted directory.
func makeNTFS(t testing.TB, sizeMiB int, label string, fill func(dir string)) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkntfs", "ntfs-3g")
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	img := filepath.Join(t.TempDir(), "ntfs.img")
	sparseFile(t, img, int64(sizeMiB)*mib)
	run(t, "mkntfs", "-q", "-F", "-Q", "-L", label, img)
	mnt := t.TempDir()
	run(t, "ntfs-3g", img, mnt)
	defer func() {
		run(t, "umount", mnt)
	}()
	fill(mnt)
	return img
}

// part is one partition of a test disk.
type part struct {
	sizeMiB int
	typ     string // sfdisk type: "U" (EFI), "L" (Linux), "7" (NTFS, MBR), GUIDs for GPT
	fs      string // file system image to place in it, "" for none
	uuid    string // GPT partition GUID, "" for a random one
}

// makeDisk makes a raw disk with a partition table (label "gpt" or "dos")
// and writes each partition's file system image into place.
func makeDisk(t testing.TB, path, label string, parts []part) {
	t.Helper()
	testutil.RequireTool(t, "sfdisk", "fdisk")
	total := 2
	for _, p := range parts {
		total += p.sizeMiB
	}
	sparseFile(t, path, int64(total)*mib)
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", label)
	for _, p := range parts {
		fmt.Fprintf(&script, "size=%dMiB, type=%s", p.sizeMiB, p.typ)
		if p.uuid != "" {
			fmt.Fprintf(&script, ", uuid=%s", p.uuid)
		}
		script.WriteString("\n")
	}
	cmd := sfdisk(path, script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	offsets := partOffsets(t, path)
	for i, p := range parts {
		if p.fs == "" {
			continue
		}
		placeImage(t, path, p.fs, offsets[i])
	}
}
