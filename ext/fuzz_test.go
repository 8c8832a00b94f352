package ext

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// Fuzz inputs are packed images: a bitmap of which 1 KiB blocks of a
// 256 KiB image are present, then those blocks in order. Real images are
// mostly zeros, so seeds stay small while every structure is in them.
const (
	fuzzImageSize = 256 << 10
	fuzzBlock     = 1024
	fuzzBitmap    = fuzzImageSize / fuzzBlock / 8
)

type memDev struct{ b []byte }

func (d *memDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(d.b)) {
		return 0, io.EOF
	}
	n := copy(p, d.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (d *memDev) WriteAt(p []byte, off int64) (int, error) { return 0, fmt.Errorf("read-only") }
func (d *memDev) Size() int64                              { return int64(len(d.b)) }

func unpackImage(data []byte) []byte {
	img := make([]byte, fuzzImageSize)
	if len(data) < fuzzBitmap {
		copy(img, data)
		return img
	}
	bitmap, rest := data[:fuzzBitmap], data[fuzzBitmap:]
	for i := 0; i < fuzzImageSize/fuzzBlock && len(rest) > 0; i++ {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			rest = rest[copy(img[i*fuzzBlock:(i+1)*fuzzBlock], rest):]
		}
	}
	return img
}

func packImage(img []byte) []byte {
	bitmap := make([]byte, fuzzBitmap)
	var blocks []byte
	for i := 0; i*fuzzBlock < len(img) && i < fuzzImageSize/fuzzBlock; i++ {
		b := img[i*fuzzBlock : (i+1)*fuzzBlock]
		if bytes.Count(b, []byte{0}) != len(b) {
			bitmap[i/8] |= 1 << (i % 8)
			blocks = append(blocks, b...)
		}
	}
	return append(bitmap, blocks...)
}

// FuzzOpen feeds damaged superblocks, group descriptors, inodes, extent
// trees, block maps, directories, symlinks and xattrs to Open and a walk.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Open(&memDev{unpackImage(data)})
		if err != nil {
			return
		}
		_, _ = v.StatFS()
		_ = v.Type()
		budget := 200
		buf := make([]byte, 70000)
		var walk func(ino volume.Ino, depth int)
		walk = func(ino volume.Ino, depth int) {
			ents, err := v.ReadDir(ino)
			if err != nil || depth > 8 {
				return
			}
			for _, e := range ents {
				if budget--; budget < 0 {
					return
				}
				_, _ = v.Lookup(ino, e.Name)
				_, _ = v.ListXattr(e.Ino)
				_, _ = v.GetXattr(e.Ino, "user.k")
				_, _ = v.Readlink(e.Ino)
				_, _ = v.ReadAt(e.Ino, buf, 0)
				_, _ = v.ReadAt(e.Ino, buf[:100], 1<<32+5)
				if e.Mode.IsDir() {
					walk(e.Ino, depth+1)
				}
			}
		}
		walk(v.Root(), 0)
		for ino := volume.Ino(1); ino < 40; ino++ {
			_, _ = v.GetAttr(ino)
		}
	})
}

// fuzzSeeds are the seed images: a block-mapped ext2, an extent ext4
// with a depth-1 tree (a fragmented file), and an inline_data ext4.
var fuzzSeeds = []struct {
	name, kind string
	args       []string
}{
	{"ext2", "ext2", []string{"-b", "1024"}},
	{"ext4", "ext4", []string{"-b", "1024", "-O", "^has_journal"}},
	{"ext4-inline", "ext4", []string{"-b", "1024", "-O", "^has_journal,inline_data"}},
}

func fuzzSeedTree(t *testing.T) string {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello\n"), 0o644)
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "b"), bytes.Repeat([]byte("b"), 1500), 0o644)
	os.Symlink("a.txt", filepath.Join(src, "l"))
	os.Symlink(string(bytes.Repeat([]byte("t"), 70)), filepath.Join(src, "longlink"))
	fh, _ := os.Create(filepath.Join(src, "frag"))
	for i := range 7 {
		fh.WriteAt(bytes.Repeat([]byte("F"), 1024), int64(i)*3072)
	}
	fh.Close()
	os.WriteFile(filepath.Join(src, "x"), nil, 0o644)
	return src
}

// TestMakeFuzzSeeds writes FuzzOpen's seeds from mke2fs images (run with
// OFFVM_EXT_MAKE_SEEDS=1).
func TestMakeFuzzSeeds(t *testing.T) {
	if os.Getenv("OFFVM_EXT_MAKE_SEEDS") == "" {
		t.Skip("set OFFVM_EXT_MAKE_SEEDS=1 to rewrite testdata/fuzz/FuzzOpen")
	}
	requireE2fs(t)
	src := fuzzSeedTree(t)
	testutil.Run(t, "setfattr", "-n", "user.k", "-v", "val", filepath.Join(src, "x"))
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(dir, 0o755)
	for _, s := range fuzzSeeds {
		img := filepath.Join(t.TempDir(), "seed.img")
		fh, _ := os.Create(img)
		fh.Truncate(fuzzImageSize)
		fh.Close()
		args := append(append([]string{"-q", "-F", "-N", "32", "-L", "seed"}, s.args...), "-d", src, img)
		testutil.Run(t, "mkfs."+s.kind, args...)
		b, _ := os.ReadFile(img)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", packImage(b))
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFuzzSeedsOpen checks that the committed seeds are real file
// systems, so the fuzzer starts from valid ones.
func TestFuzzSeedsOpen(t *testing.T) {
	for _, s := range fuzzSeeds {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzOpen", s.name))
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.TrimSuffix(bytes.SplitN(b, []byte("\n"), 2)[1], []byte("\n"))
		var packed string
		if _, err := fmt.Sscanf(string(bytes.TrimSuffix(bytes.TrimPrefix(body, []byte("[]byte(")), []byte(")"))), "%q", &packed); err != nil {
			t.Fatal(err)
		}
		v, err := Open(&memDev{unpackImage([]byte(packed))})
		if err != nil || v.Type() != "ext"+s.name[3:4] || v.Label() != "seed" {
			t.Fatalf("%s: %v", s.name, err)
		}
		content, err := volume.ReadFile(v, "frag", 1<<20)
		if err != nil || len(content) != 6*3072+1024 || bytes.Count(content, []byte("F")) != 7*1024 {
			t.Errorf("%s: frag: %d bytes, %v", s.name, len(content), err)
		}
		if names, err := v.ListXattr(mustResolve(t, v, "x")); err != nil || len(names) != 1 {
			t.Errorf("%s: xattrs %q %v", s.name, names, err)
		}
	}
}

func mustResolve(t *testing.T, v *FS, p string) volume.Ino {
	t.Helper()
	a, err := volume.Resolve(v, p)
	if err != nil {
		t.Fatal(err)
	}
	return a.Ino
}
