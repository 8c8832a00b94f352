package fat

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/volume"
)

// env runs operations on the engine and on the model side by side.
type env struct {
	t   *testing.T
	v   *Volume
	img string
	m   *model
	f   format
}

func newEnv(t *testing.T, f format) *env {
	img := mkfs(t, f, "")
	v, err := Open(openDev(t, img, 0, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, v: v, img: img, m: newModel(), f: f}
}

// check syncs and proves the image with fsck.fat and mtools.
func (e *env) check() {
	e.t.Helper()
	if err := e.v.Sync(); err != nil {
		e.t.Fatal(err)
	}
	checkMtools(e.t, e.img, e.m)
}

func (e *env) create(p string, data []byte) {
	e.t.Helper()
	dir, name := split(p)
	a := must[volume.Attr](e.t)(e.v.Create(resolve(e.t, e.v, dir), name, 0o644))
	if len(data) > 0 {
		if n, err := e.v.WriteAt(a.Ino, data, 0); err != nil || n != len(data) {
			e.t.Fatalf("write %s: %d, %v", p, n, err)
		}
	}
	e.m.files[p] = append([]byte(nil), data...)
}

func (e *env) write(p string, off int64, data []byte) {
	e.t.Helper()
	if n, err := e.v.WriteAt(resolve(e.t, e.v, p), data, off); err != nil || n != len(data) {
		e.t.Fatalf("write %s at %d: %d, %v", p, off, n, err)
	}
	old := e.m.files[p]
	if end := off + int64(len(data)); end > int64(len(old)) {
		old = append(old, make([]byte, end-int64(len(old)))...)
	}
	copy(old[off:], data)
	e.m.files[p] = old
}

func (e *env) truncate(p string, size int64) {
	e.t.Helper()
	if err := e.v.Truncate(resolve(e.t, e.v, p), size); err != nil {
		e.t.Fatalf("truncate %s: %v", p, err)
	}
	old := e.m.files[p]
	if size <= int64(len(old)) {
		e.m.files[p] = old[:size]
	} else {
		e.m.files[p] = append(old, make([]byte, size-int64(len(old)))...)
	}
}

func (e *env) mkdir(p string) {
	e.t.Helper()
	dir, name := split(p)
	must[volume.Attr](e.t)(e.v.Mkdir(resolve(e.t, e.v, dir), name, 0o755))
	e.m.dirs[p] = true
}

func (e *env) unlink(p string) {
	e.t.Helper()
	dir, name := split(p)
	if err := e.v.Unlink(resolve(e.t, e.v, dir), name); err != nil {
		e.t.Fatalf("unlink %s: %v", p, err)
	}
	delete(e.m.files, p)
}

func (e *env) rmdir(p string) {
	e.t.Helper()
	dir, name := split(p)
	if err := e.v.Rmdir(resolve(e.t, e.v, dir), name); err != nil {
		e.t.Fatalf("rmdir %s: %v", p, err)
	}
	delete(e.m.dirs, p)
}

func (e *env) rename(p, q string) {
	e.t.Helper()
	od, on := split(p)
	nd, nn := split(q)
	if err := e.v.Rename(resolve(e.t, e.v, od), on, resolve(e.t, e.v, nd), nn); err != nil {
		e.t.Fatalf("rename %s %s: %v", p, q, err)
	}
	e.m.rename(p, q)
}

func (e *env) errno(want syscall.Errno, err error) {
	e.t.Helper()
	wantErrno(e.t, err, want)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

var writeCases = []struct {
	name string
	run  func(e *env)
}{
	{"create-write-overwrite-append", func(e *env) {
		cs := int(e.v.g.clusterSize)
		e.create("/empty", nil)
		e.create("/readme.txt", []byte("hello\n"))
		e.create("/MixedCase.Txt", []byte("mixed"))
		e.create("/A much longer name than 8.3 allows, with spaces.txt", pattern(3*cs+17, 1))
		e.create("/Ünïcödé — 日本語 файл.txt", pattern(cs, 2))
		e.create("/.profile", []byte("dot"))
		e.create("/archive.tar.gz", pattern(100, 3))
		e.write("/A much longer name than 8.3 allows, with spaces.txt", int64(cs-3), pattern(10, 9)) // overwrite across a cluster edge
		e.write("/readme.txt", 6, pattern(2*cs, 4))                                                  // append
		e.write("/empty", 0, nil)
		e.create("/gap", []byte("start"))
		e.write("/gap", int64(2*cs+5), []byte("after a hole")) // zero-filled gap
		root := e.v.Root()
		_, err := e.v.Create(root, "README.TXT", 0o644)
		e.errno(syscall.EEXIST, err)
		_, err = e.v.Create(root, "mixedcase.txt", 0o644)
		e.errno(syscall.EEXIST, err)
		for _, bad := range []string{"a:b", "q?", "star*", "pipe|", `back\slash`, "trailing.", "trailing ", "ctl\x01", "<>"} {
			_, err = e.v.Create(root, bad, 0o644)
			e.errno(syscall.EINVAL, err)
		}
		_, err = e.v.Create(root, strings.Repeat("n", 256), 0o644)
		e.errno(syscall.ENAMETOOLONG, err)
		e.create("/"+strings.Repeat("n", 255), []byte("longest name"))
		e.create("/Mixed.Txt", []byte("8.3 in mixed case"))
		if err := e.v.Sync(); err != nil {
			e.t.Fatal(err)
		}
		// A lower-case 8.3 name is stored with the NT case flags and no long
		// name; a mixed-case one gets a long name over its 8.3 name.
		out := mtools(e.t, "mdir", "-a", "-i", e.img, "::/")
		for _, want := range []string{"readme   txt", "MIXED    TXT", "Mixed.Txt", "ARCHIV~1 GZ", "archive.tar.gz", "PROFIL~1", ".profile"} {
			if !strings.Contains(out, want) {
				e.t.Fatalf("mdir lacks %q:\n%s", want, out)
			}
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "readme   txt") && strings.Contains(l, "readme.txt") {
				e.t.Fatalf("readme.txt has a long name: %q", l)
			}
		}
	}},
	{"truncate", func(e *env) {
		cs := int64(e.v.g.clusterSize)
		e.create("/shrink", pattern(int(5*cs), 1))
		e.truncate("/shrink", cs+1)
		e.create("/zero", pattern(int(3*cs), 2))
		e.truncate("/zero", 0)
		e.create("/grow", pattern(10, 3))
		e.truncate("/grow", 3*cs+100)
		e.create("/regrow", pattern(int(2*cs), 4)) // stale bytes must not come back
		e.truncate("/regrow", 5)
		e.truncate("/regrow", 2*cs)
		e.create("/fromzero", nil)
		e.truncate("/fromzero", cs/2)
		_, err := e.v.Mkdir(e.v.Root(), "d", 0o755)
		if err != nil {
			e.t.Fatal(err)
		}
		e.m.dirs["/d"] = true
		e.errno(syscall.EISDIR, e.v.Truncate(resolve(e.t, e.v, "/d"), 0))
	}},
	{"unlink", func(e *env) {
		cs := int(e.v.g.clusterSize)
		for i := range 20 {
			e.create(fmt.Sprintf("/file number %d with a long name", i), pattern(i*cs/2, byte(i)))
		}
		for i := 0; i < 20; i += 3 {
			e.unlink(fmt.Sprintf("/file number %d with a long name", i))
		}
		e.unlink("/FILE NUMBER 1 WITH A LONG NAME")
		delete(e.m.files, "/file number 1 with a long name")
		e.create("/after", pattern(3*cs, 7)) // reuses freed slots and clusters
		e.errno(syscall.ENOENT, e.v.Unlink(e.v.Root(), "missing"))
		e.mkdir("/dir")
		e.errno(syscall.EISDIR, e.v.Unlink(e.v.Root(), "dir"))
	}},
	{"mkdir-rmdir", func(e *env) {
		e.mkdir("/top")
		e.mkdir("/top/Second Level")
		e.mkdir("/top/Second Level/third")
		e.create("/top/Second Level/third/f.txt", []byte("deep"))
		e.mkdir("/gone")
		e.mkdir("/gone/child")
		e.rmdir("/gone/child")
		e.rmdir("/gone")
		e.errno(syscall.ENOTEMPTY, e.v.Rmdir(e.v.Root(), "top"))
		e.errno(syscall.ENOTDIR, e.v.Rmdir(resolve(e.t, e.v, "/top/Second Level/third"), "f.txt"))
		_, err := e.v.Mkdir(e.v.Root(), "TOP", 0o755)
		e.errno(syscall.EEXIST, err)
		// Grow a directory over several clusters.
		e.mkdir("/big")
		for i := range 300 {
			e.create(fmt.Sprintf("/big/%03d entry with a long name.txt", i), nil)
		}
	}},
	{"rename", func(e *env) {
		e.create("/a.txt", []byte("a"))
		ino := resolve(e.t, e.v, "/a.txt")
		e.rename("/a.txt", "/renamed with a long name.txt")
		e.rename("/renamed with a long name.txt", "/RENAMED With A Long Name.txt") // case only
		if got := resolve(e.t, e.v, "/renamed with a long name.txt"); got != ino {
			e.t.Fatalf("rename changed ino %d to %d", ino, got)
		}
		e.mkdir("/src")
		e.mkdir("/src/inner")
		e.create("/src/inner/file", pattern(5000, 1))
		e.mkdir("/dst")
		e.rename("/RENAMED With A Long Name.txt", "/dst/moved.txt") // across directories
		e.rename("/src/inner", "/dst/inner moved")                  // directory across: ".." fixed
		e.rename("/dst/inner moved", "/inner at root")              // and back under the root (".." = 0)
		e.create("/victim", pattern(9000, 2))
		e.create("/winner", pattern(100, 3))
		e.rename("/winner", "/VICTIM") // over an existing file, clusters freed
		e.create("/dst/over.txt", pattern(7000, 4))
		e.create("/mover.txt", pattern(300, 5))
		e.rename("/mover.txt", "/dst/OVER.TXT") // over an existing file in another directory
		e.mkdir("/emptytarget")
		e.rename("/src", "/emptytarget") // directory over an empty directory
		e.mkdir("/full")
		e.create("/full/x", nil)
		root := e.v.Root()
		e.errno(syscall.ENOTEMPTY, e.v.Rename(root, "emptytarget", root, "full"))
		e.errno(syscall.EINVAL, e.v.Rename(root, "full", resolve(e.t, e.v, "/full"), "sub"))
		e.errno(syscall.EISDIR, e.v.Rename(root, "VICTIM", root, "full"))
		e.errno(syscall.ENOTDIR, e.v.Rename(root, "full", root, "VICTIM"))
		e.errno(syscall.EINVAL, e.v.Rename(root, "VICTIM", root, "bad?"))
	}},
	{"times-attributes", func(e *env) {
		e.create("/stamped.txt", []byte("t"))
		ino := resolve(e.t, e.v, "/stamped.txt")
		mt := time.Date(2001, 2, 3, 4, 5, 7, 0, time.UTC)
		at := time.Date(2002, 3, 4, 0, 0, 0, 0, time.UTC)
		if err := e.v.SetTimes(ino, &at, &mt); err != nil {
			e.t.Fatal(err)
		}
		a, _ := e.v.GetAttr(ino)
		if !a.Mtime.Equal(mt.Add(-time.Second)) || !a.Atime.Equal(at) {
			e.t.Fatalf("mtime %v atime %v", a.Mtime, a.Atime)
		}
		if out := mtools(e.t, "mdir", "-i", e.img, "::/stamped.txt"); !strings.Contains(out, "2001-02-03   4:05") {
			e.t.Fatalf("mdir shows\n%s", out)
		}
		if err := e.v.SetXattr(ino, xattrAttrib, []byte{attrReadOnly | attrHidden | attrArchive, 0, 0, 0}); err != nil {
			e.t.Fatal(err)
		}
		if a, _ := e.v.GetAttr(ino); a.Mode != 0o444 {
			e.t.Fatalf("mode %v", a.Mode)
		}
		if out := mtools(e.t, "mattrib", "-i", e.img, "::/stamped.txt"); strings.Join(strings.Fields(out), " ") != "A HR ::/stamped.txt" {
			e.t.Fatalf("mattrib shows %q", out)
		}
		if b, _ := e.v.GetXattr(ino, xattrAttrib); !bytes.Equal(b, []byte{0x23, 0, 0, 0}) {
			e.t.Fatalf("ntfs_attrib %x", b)
		}
		e.errno(syscall.ENOTSUP, e.v.SetXattr(ino, "user.stream", []byte("x")))
		_, err := e.v.GetXattr(ino, "user.stream")
		e.errno(syscall.ENODATA, err)
		// FAT has no links: the engine does not offer them, and the FUSE
		// tree answers EPERM as Linux's vfat does (fs/capability_test.go).
		if _, ok := any(e.v).(volume.Linker); ok {
			e.t.Fatal("the FAT engine offers hard links")
		}
		if _, ok := any(e.v).(volume.Symlinker); ok {
			e.t.Fatal("the FAT engine offers symbolic links")
		}
		ro := must[volume.Attr](e.t)(e.v.Create(e.v.Root(), "readonly", 0o444))
		e.m.files["/readonly"] = nil
		if ro.Mode != 0o444 {
			e.t.Fatalf("mode %v", ro.Mode)
		}
	}},
	{"enospc", func(e *env) {
		free := int64(e.v.free) * e.v.g.clusterSize
		e.create("/small", []byte("x"))
		ino := resolve(e.t, e.v, "/small")
		_, err := e.v.WriteAt(ino, make([]byte, free+1), 0) // more than is free: nothing changes
		e.errno(syscall.ENOSPC, err)
		e.errno(syscall.ENOSPC, e.v.Truncate(ino, free+1))
		if free > 64<<20 {
			return // filling a big volume proves nothing more and is slow
		}
		e.create("/fill", pattern(int(e.v.free)*int(e.v.g.clusterSize), 9)) // exactly what is free
		if e.v.free != 0 {
			e.t.Fatalf("%d clusters free after filling", e.v.free)
		}
		_, err = e.v.Mkdir(e.v.Root(), "no room", 0o755)
		e.errno(syscall.ENOSPC, err)
		e.unlink("/fill")
		e.write("/small", 1, []byte("room again"))
	}},
	{"full-root", func(e *env) {
		// The FAT12/16 root is a fixed region: ENOSPC when full. The FAT32
		// root is a cluster chain that grows.
		var err error
		i := 0
		for ; i < 600 && err == nil; i++ {
			name := fmt.Sprintf("%03d root entry with a long name", i)
			_, err = e.v.Create(e.v.Root(), name, 0o644)
			if err == nil {
				e.m.files["/"+name] = nil
			}
		}
		if e.f.fat == 32 {
			if err != nil {
				e.t.Fatal(err)
			}
			return
		}
		e.errno(syscall.ENOSPC, err)
	}},
}

// TestWriteOps runs each operation group on each format and proves the
// result with fsck.fat -n, mdir and mcopy.
func TestWriteOps(t *testing.T) {
	requireTools(t)
	for _, f := range formats {
		for _, c := range writeCases {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				e := newEnv(t, f)
				c.run(e)
				e.check()
			})
		}
	}
}

// TestMixedRandom runs a seeded random mix of every operation.
func TestMixedRandom(t *testing.T) {
	requireTools(t)
	for _, f := range formatNamed("fat12-512", "fat16-4096", "fat16-512-32k", "fat32-512") {
		t.Run(f.name, func(t *testing.T) {
			e := newEnv(t, f)
			rng := rand.New(rand.NewSource(42))
			names := []string{"a", "B.TXT", "readme.md", "Long file name %d.data", "Ünï %d", "x%d.tar.gz", ".dot%d", "MiXeD.Txt"}
			pick := func(m map[string][]byte) string {
				var ks []string
				for k := range m {
					ks = append(ks, k)
				}
				if len(ks) == 0 {
					return ""
				}
				sortStrings(ks)
				return ks[rng.Intn(len(ks))]
			}
			dirList := func() []string {
				ds := []string{""}
				for d := range e.m.dirs {
					ds = append(ds, d)
				}
				sortStrings(ds)
				return ds
			}
			cs := int(e.v.g.clusterSize)
			for i := range 400 {
				dirs := dirList()
				dir := dirs[rng.Intn(len(dirs))]
				name := strings.ReplaceAll(names[rng.Intn(len(names))], "%d", fmt.Sprint(rng.Intn(50)))
				p := dir + "/" + name
				_, exists := e.m.find(p)
				switch op := rng.Intn(10); {
				case op < 3 && !exists:
					e.create(p, pattern(rng.Intn(3*cs), byte(i)))
				case op < 3:
					_, err := e.v.Create(resolve(t, e.v, dir), strings.ToUpper(name), 0o644)
					e.errno(syscall.EEXIST, err)
				case op == 3 && !exists && len(dirs) < 15:
					e.mkdir(p)
				case op == 4:
					if f := pick(e.m.files); f != "" {
						e.write(f, int64(rng.Intn(2*cs)), pattern(rng.Intn(2*cs)+1, byte(i)))
					}
				case op == 5:
					if f := pick(e.m.files); f != "" {
						e.truncate(f, int64(rng.Intn(3*cs)))
					}
				case op == 6:
					if f := pick(e.m.files); f != "" {
						e.unlink(f)
					}
				case op == 7:
					if f := pick(e.m.files); f != "" {
						if q, ok := e.m.find(p); !ok || e.m.files[q] != nil || q == f {
							if ok && q != f && e.m.dirs[q] {
								break
							}
							e.rename(f, p)
						}
					}
				case op == 8 && len(dirs) > 1:
					d := dirs[1+rng.Intn(len(dirs)-1)]
					if strings.HasPrefix(dir+"/", d+"/") || exists {
						break
					}
					e.rename(d, p)
				case op == 9 && len(dirs) > 1:
					d := dirs[1+rng.Intn(len(dirs)-1)]
					empty := true
					for k := range e.m.files {
						empty = empty && !strings.HasPrefix(k, d+"/")
					}
					for k := range e.m.dirs {
						empty = empty && !strings.HasPrefix(k, d+"/")
					}
					if empty {
						e.rmdir(d)
					} else {
						pd, pn := split(d)
						e.errno(syscall.ENOTEMPTY, e.v.Rmdir(resolve(t, e.v, pd), pn))
					}
				}
			}
			e.check()
		})
	}
}
