package fat

import (
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestReadOnlyUseWritesNothing: a volume opened for writing but only read
// leaves the image byte-identical.
func TestReadOnlyUseWritesNothing(t *testing.T) {
	requireTools(t)
	src, m := srcTree(t, 50)
	for _, f := range formatNamed("fat12-512", "fat16-512", "fat32-512") {
		t.Run(f.name, func(t *testing.T) {
			img := mkfs(t, f, "RO")
			mtools(t, "mcopy", "-s", "-m", "-i", img, src+"/sub", src+"/many", src+"/big.bin", "::/")
			before := fileHash(t, img)
			v, err := Open(openDev(t, img, 0, 0), Options{})
			if err != nil {
				t.Fatal(err)
			}
			sub := newModel()
			for k, d := range m.files {
				if len(k) > 5 && (k[:5] == "/sub/" || k[:6] == "/many/" || k == "/big.bin") {
					sub.files[k] = d
				}
			}
			for k := range m.dirs {
				if k == "/sub" || k == "/many" || k == "/sub/deeper" || k == "/sub/Another Long Sub Name" {
					sub.dirs[k] = true
				}
			}
			compareTree(t, v, src, sub)
			if err := v.Sync(); err != nil {
				t.Fatal(err)
			}
			if fileHash(t, img) != before {
				t.Fatal("reading changed the image")
			}
		})
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestInoStable: an Ino survives renames, directory re-reads and moves of
// its parent; the root is 1.
func TestInoStable(t *testing.T) {
	requireTools(t)
	e := newEnv(t, formatNamed("fat32-512")[0])
	if e.v.Root() != 1 {
		t.Fatal("root is not 1")
	}
	e.mkdir("/d1")
	e.mkdir("/d1/inner")
	e.create("/d1/inner/file", []byte("x"))
	e.create("/d1/inner/empty", nil) // no cluster: only its entry identifies it
	fi, ei, di := resolve(t, e.v, "/d1/inner/file"), resolve(t, e.v, "/d1/inner/empty"), resolve(t, e.v, "/d1/inner")
	for i := range 40 { // force re-parsing the directories
		e.create(fmt.Sprintf("/d1/inner/filler %d", i), nil)
	}
	e.mkdir("/d2")
	e.rename("/d1/inner", "/d2/Inner Renamed")
	e.rename("/d2/Inner Renamed/empty", "/d2/Empty Moved")
	if resolve(t, e.v, "/d2/inner renamed/FILE") != fi || resolve(t, e.v, "/d2/Empty Moved") != ei || resolve(t, e.v, "/d2/Inner Renamed") != di {
		t.Fatal("an Ino changed")
	}
	if a, err := e.v.GetAttr(ei); err != nil || a.Size != 0 {
		t.Fatalf("GetAttr after move: %v %v", a, err)
	}
	e.unlink("/d2/Empty Moved")
	if _, err := e.v.GetAttr(ei); err == nil {
		t.Fatal("a removed file still answers GetAttr")
	}
	e.check()
}

// TestConcurrent runs writers and readers at once (go test -race).
func TestConcurrent(t *testing.T) {
	requireTools(t)
	e := newEnv(t, formatNamed("fat32-512")[0])
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := fmt.Sprintf("worker %d", g)
			d, err := e.v.Mkdir(e.v.Root(), dir, 0o755)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 20 {
				name := fmt.Sprintf("file %d", i)
				a, err := e.v.Create(d.Ino, name, 0o644)
				if err != nil {
					t.Error(err)
					return
				}
				data := pattern(1000+i*100, byte(g))
				for off := 0; off < len(data); off += 300 {
					if _, err := e.v.WriteAt(a.Ino, data[off:min(off+300, len(data))], int64(off)); err != nil {
						t.Error(err)
						return
					}
				}
				buf := make([]byte, len(data))
				if _, err := e.v.ReadAt(a.Ino, buf, 0); err != nil || string(buf) != string(data) {
					t.Errorf("read back %s/%s: %v", dir, name, err)
				}
				_, _ = e.v.ReadDir(e.v.Root())
				mu.Lock()
				e.m.files["/"+dir+"/"+name] = data
				e.m.dirs["/"+dir] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	e.check()
}

// BenchmarkSequential writes then reads a 32 MiB file in 128 KiB calls (the
// FUSE request size) on FAT32.
func BenchmarkSequential(b *testing.B) {
	testutil.RequireTool(b, "mkfs.vfat", "dosfstools")
	img := mkfsB(b)
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	defer f.Close()
	st, _ := f.Stat()
	v, err := Open(&fileDev{f: f, size: st.Size()}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	chunk := pattern(128<<10, 1)
	const total = 32 << 20
	b.SetBytes(2 * total)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprint("file ", i)
		a, err := v.Create(v.Root(), name, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < total; off += len(chunk) {
			if _, err := v.WriteAt(a.Ino, chunk, int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		buf := make([]byte, len(chunk))
		for off := 0; off < total; off += len(chunk) {
			if _, err := v.ReadAt(a.Ino, buf, int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		if err := v.Unlink(v.Root(), name); err != nil {
			b.Fatal(err)
		}
	}
}

func mkfsB(b *testing.B) string {
	img := b.TempDir() + "/bench.img"
	fh, _ := os.Create(img)
	fh.Truncate(260 << 20)
	fh.Close()
	if out, err := osexecCombined("mkfs.vfat", "-F", "32", "-S", "4096", "-s", "1", img); err != nil {
		b.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	return img
}

// TestModifyMtoolsTree changes a tree that mtools wrote (its long names,
// its 8.3 aliases, a 1,000-entry directory) and proves the result.
func TestModifyMtoolsTree(t *testing.T) {
	requireTools(t)
	src, m := srcTree(t, 1000)
	entries, _ := os.ReadDir(src)
	var top []string
	for _, de := range entries {
		top = append(top, src+"/"+de.Name())
	}
	for _, f := range formatNamed("fat12-4096", "fat32-512") {
		t.Run(f.name, func(t *testing.T) {
			img := mkfs(t, f, "")
			mtools(t, "mcopy", append(append([]string{"-s", "-i", img}, top...), "::/")...)
			v, err := Open(openDev(t, img, 0, 0), Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, v: v, img: img, m: newModel(), f: f}
			for k, d := range m.files {
				e.m.files[k] = d
			}
			for k := range m.dirs {
				e.m.dirs[k] = true
			}
			for i := 0; i < 1000; i += 3 {
				e.unlink(fmt.Sprintf("/many/%04d file with a long name.txt", i))
			}
			e.rename("/sub", "/many/Sub Moved Here")
			e.rename("/readme.txt", "/README.TXT")
			e.rename("/many/0001 file with a long name.txt", "/many/0002 file with a long name.txt")
			e.write("/big.bin", 1000, pattern(70_000, 3))
			e.truncate("/Long Name With Spaces and more than 13 chars.data", 10)
			e.create("/many/new file 2000.txt", pattern(9000, 4))
			e.rmdir("/emptydir")
			e.check()
		})
	}
}
