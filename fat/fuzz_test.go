package fat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/volume"
)

// sparseDev is a fuzz device: the input at offset 0, zeros after it up to
// size, and writes kept in pages.
type sparseDev struct {
	base  []byte
	size  int64
	pages map[int64][]byte
}

const pageSize = 4096

func (d *sparseDev) page(i int64) []byte {
	if p := d.pages[i]; p != nil {
		return p
	}
	p := make([]byte, pageSize)
	if off := i * pageSize; off < int64(len(d.base)) {
		copy(p, d.base[off:])
	}
	return p
}

func (d *sparseDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("read past end")
	}
	for n := 0; n < len(p); {
		pg := d.page((off + int64(n)) / pageSize)
		n += copy(p[n:], pg[(off+int64(n))%pageSize:])
	}
	return len(p), nil
}

func (d *sparseDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("write past end")
	}
	for n := 0; n < len(p); {
		i := (off + int64(n)) / pageSize
		pg := d.page(i)
		d.pages[i] = pg
		n += copy(pg[(off+int64(n))%pageSize:], p[n:])
	}
	return len(p), nil
}

func (d *sparseDev) Size() int64 { return d.size }

// FuzzOpen feeds corrupt boot sectors, FATs, directory entries and long
// names to Open, a walk of the tree, and a few writes. Seeds are made by
// TestMakeFuzzSeeds from mkfs.vfat and mcopy images.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dev := &sparseDev{base: data, size: max(int64(len(data)), 40<<20), pages: map[int64][]byte{}}
		v, err := Open(dev, Options{})
		if err != nil {
			return
		}
		_, _ = v.StatFS()
		budget := 300
		var walk func(ino volume.Ino, depth int)
		walk = func(ino volume.Ino, depth int) {
			ents, err := v.ReadDir(ino)
			if err != nil || depth > 5 {
				return
			}
			for _, e := range ents {
				if budget--; budget < 0 {
					return
				}
				_, _ = v.Lookup(ino, e.Name)
				_, _ = v.GetXattr(e.Ino, xattrAttrib)
				if e.Mode.IsDir() {
					walk(e.Ino, depth+1)
					continue
				}
				buf := make([]byte, 8192)
				_, _ = v.ReadAt(e.Ino, buf, 0)
				_, _ = v.ReadAt(e.Ino, buf, 100_000)
			}
		}
		walk(v.Root(), 0)
		root := v.Root()
		a, err := v.Create(root, "fuzz created file.txt", 0o644)
		if err == nil {
			_, _ = v.WriteAt(a.Ino, bytes.Repeat([]byte("x"), 5000), 100)
			_ = v.Truncate(a.Ino, 10)
			_ = v.Rename(root, "fuzz created file.txt", root, "renamed")
			_ = v.Unlink(root, "renamed")
		}
		if _, err := v.Mkdir(root, "fuzz dir", 0o755); err == nil {
			_ = v.Rmdir(root, "fuzz dir")
		}
		_ = v.Sync()
	})
}

// TestMakeFuzzSeeds writes FuzzOpen's seed corpus from real mkfs.vfat and
// mcopy images (run with OFFVM_FAT_MAKE_SEEDS=1). Each seed is the image's
// head, up to its last non-zero byte; FuzzOpen pads it with zeros.
func TestMakeFuzzSeeds(t *testing.T) {
	if os.Getenv("OFFVM_FAT_MAKE_SEEDS") == "" {
		t.Skip("set OFFVM_FAT_MAKE_SEEDS=1 to rewrite testdata/fuzz/FuzzOpen")
	}
	requireTools(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "Sub Directory"), 0o755)
	os.WriteFile(filepath.Join(src, "readme.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(src, "A Long File Name.text"), pattern(1500, 1), 0o644)
	os.WriteFile(filepath.Join(src, "Sub Directory", "Ünïcödé.txt"), []byte("u"), 0o644)
	seeds := []struct {
		name string
		args []string
		kib  int
		head int64 // 0: the whole image head; else keep only this many bytes
	}{
		{"fat12", []string{"-F", "12", "-r", "64", "-s", "1"}, 256, 0},
		{"fat16", []string{"-F", "16", "-r", "64", "-s", "1", "-f", "1"}, 2200, 0},
		{"fat32", []string{"-F", "32", "-s", "1", "-f", "1"}, 36 << 10, 32*512 + 512},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(dir, 0o755)
	for _, s := range seeds {
		img := filepath.Join(t.TempDir(), s.name)
		fh, _ := os.Create(img)
		fh.Truncate(int64(s.kib) << 10)
		fh.Close()
		mkfsArgs := append(append([]string{}, s.args...), "-n", "SEED", img)
		if out, err := osexecCombined("mkfs.vfat", mkfsArgs...); err != nil {
			t.Fatalf("mkfs.vfat: %v\n%s", err, out)
		}
		if s.head == 0 {
			mtools(t, "mcopy", "-s", "-i", img, filepath.Join(src, "readme.txt"), filepath.Join(src, "A Long File Name.text"), filepath.Join(src, "Sub Directory"), "::/")
		}
		b, _ := os.ReadFile(img)
		end := int64(len(bytes.TrimRight(b, "\x00")))
		if s.head > 0 {
			end = s.head
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b[:end])
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFuzzSeedsOpen checks that the committed seeds are real volumes, so
// the fuzzer starts from valid ones.
func TestFuzzSeedsOpen(t *testing.T) {
	for _, name := range []string{"fat12", "fat16", "fat32"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzOpen", name))
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.TrimSuffix(bytes.SplitN(b, []byte("\n"), 2)[1], []byte("\n"))
		var s string
		if _, err := fmt.Sscanf(string(bytes.TrimSuffix(bytes.TrimPrefix(body, []byte("[]byte(")), []byte(")"))), "%q", &s); err != nil {
			t.Fatal(err)
		}
		v, err := Open(&sparseDev{base: []byte(s), size: 40 << 20, pages: map[int64][]byte{}}, Options{ReadOnly: true})
		if err != nil || v.Type() != name || v.Label() != "SEED" {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "fat32" {
			continue
		}
		if _, err := v.Lookup(v.Root(), "a long file name.TEXT"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
