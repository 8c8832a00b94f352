package ext

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// rwDev is a partition in a host file, writable.
type rwDev struct {
	f    *os.File
	size int64
}

func (d *rwDev) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d *rwDev) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }
func (d *rwDev) Size() int64                              { return d.size }

func openRW(t testing.TB, img string) (*FS, func()) {
	t.Helper()
	fh, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := fh.Stat()
	v, err := OpenWritable(&rwDev{f: fh, size: st.Size()})
	if err != nil {
		fh.Close()
		t.Fatalf("OpenWritable %s: %v", img, err)
	}
	return v, func() { fh.Close() }
}

// node is the test's model of one file.
type node struct {
	kind   byte // 'f', 'd', 'l'
	data   []byte
	target string
}

// wl applies a workload to the engine and to the model side by side.
type wl struct {
	t     *testing.T
	v     *FS
	model map[string]*node
}

func (w *wl) ino(p string) volume.Ino {
	w.t.Helper()
	ino := w.v.Root()
	if p == "" {
		return ino
	}
	for _, c := range strings.Split(p, "/") {
		a, err := w.v.Lookup(ino, c)
		if err != nil {
			w.t.Fatalf("lookup %s: %v", p, err)
		}
		ino = a.Ino
	}
	return ino
}

func (w *wl) split(p string) (volume.Ino, string) {
	d, b := path.Split(p)
	return w.ino(strings.TrimSuffix(d, "/")), b
}

func (w *wl) must(err error, what string) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *wl) create(p string, data []byte) {
	w.t.Helper()
	d, b := w.split(p)
	a, err := w.v.Create(d, b, 0o644)
	w.must(err, "create "+p)
	if len(data) > 0 {
		_, err = w.v.WriteAt(a.Ino, data, 0)
		w.must(err, "write "+p)
	}
	w.model[p] = &node{kind: 'f', data: append([]byte(nil), data...)}
}

func (w *wl) writeAt(p string, off int, data []byte) {
	w.t.Helper()
	_, err := w.v.WriteAt(w.ino(p), data, int64(off))
	w.must(err, "writeAt "+p)
	n := w.model[p]
	if end := off + len(data); end > len(n.data) {
		n.data = append(n.data, make([]byte, end-len(n.data))...)
	}
	copy(n.data[off:], data)
}

func (w *wl) appendTo(p string, data []byte) { w.writeAt(p, len(w.model[p].data), data) }

func (w *wl) truncate(p string, size int) {
	w.t.Helper()
	w.must(w.v.Truncate(w.ino(p), int64(size)), "truncate "+p)
	n := w.model[p]
	if size < len(n.data) {
		n.data = n.data[:size]
	} else {
		n.data = append(n.data, make([]byte, size-len(n.data))...)
	}
}

func (w *wl) mkdir(p string) {
	w.t.Helper()
	d, b := w.split(p)
	_, err := w.v.Mkdir(d, b, 0o755)
	w.must(err, "mkdir "+p)
	w.model[p] = &node{kind: 'd'}
}

func (w *wl) symlink(p, target string) {
	w.t.Helper()
	d, b := w.split(p)
	_, err := w.v.Symlink(d, b, target)
	w.must(err, "symlink "+p)
	w.model[p] = &node{kind: 'l', target: target}
}

func (w *wl) link(old, p string) {
	w.t.Helper()
	d, b := w.split(p)
	_, err := w.v.Link(w.ino(old), d, b)
	w.must(err, "link "+p)
	w.model[p] = w.model[old] // shared: writes through one show in both
}

func (w *wl) unlink(p string) {
	w.t.Helper()
	d, b := w.split(p)
	w.must(w.v.Unlink(d, b), "unlink "+p)
	delete(w.model, p)
}

func (w *wl) rmdir(p string) {
	w.t.Helper()
	d, b := w.split(p)
	w.must(w.v.Rmdir(d, b), "rmdir "+p)
	delete(w.model, p)
}

func (w *wl) rename(a, b string) {
	w.t.Helper()
	ad, an := w.split(a)
	bd, bn := w.split(b)
	w.must(w.v.Rename(ad, an, bd, bn), "rename "+a+" "+b)
	moved := map[string]*node{}
	for k, n := range w.model {
		if k == a || strings.HasPrefix(k, a+"/") {
			moved[b+strings.TrimPrefix(k, a)] = n
			delete(w.model, k)
		}
	}
	for k := range w.model {
		if k == b || strings.HasPrefix(k, b+"/") {
			delete(w.model, k)
		}
	}
	for k, n := range moved {
		w.model[k] = n
	}
}

// e2fsckClean runs e2fsck -fn and fails unless it exits 0.
func e2fsckClean(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	return string(out)
}

// checkTree dumps the image with debugfs rdump and compares it with the
// model, file by file.
func checkTree(t *testing.T, img string, model map[string]*node) {
	t.Helper()
	out := t.TempDir()
	debugfs(t, img, "rdump / "+out, false)
	got := map[string]*node{}
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			got[rel] = &node{kind: 'l', target: tg}
		case fi.IsDir():
			got[rel] = &node{kind: 'd'}
		default:
			b, _ := os.ReadFile(p)
			got[rel] = &node{kind: 'f', data: b}
		}
		return nil
	})
	var names []string
	for k := range model {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		m, g := model[k], got[k]
		switch {
		case g == nil:
			t.Errorf("%s: missing from debugfs rdump", k)
		case g.kind != m.kind:
			t.Errorf("%s: kind %c, want %c", k, g.kind, m.kind)
		case m.kind == 'f' && !bytes.Equal(g.data, m.data):
			t.Errorf("%s: %d bytes differ from the %d written", k, len(g.data), len(m.data))
		case m.kind == 'l' && g.target != m.target:
			t.Errorf("%s: target %q, want %q", k, g.target, m.target)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("%s: in the image but not in the model", k)
	}
}

// freeBlocks reads "Free blocks:" from dumpe2fs -h.
func dumpeFree(t *testing.T, img string) int {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs -h: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Free blocks:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("dumpe2fs -h printed no free block count")
	return 0
}

var writeImages = []struct {
	name string
	args []string
}{
	// 64 MiB would get 1 KiB blocks ("small"): say 4096 for the others.
	{"default", []string{"-b", "4096"}},
	{"nocsum", []string{"-b", "4096", "-O", "^metadata_csum"}},
	{"uninit_bg", []string{"-b", "4096", "-O", "^metadata_csum,uninit_bg"}},
	{"1k", []string{"-b", "1024"}},
	{"nojournal", []string{"-b", "4096", "-O", "^has_journal"}},
	{"no64bit", []string{"-b", "1024", "-O", "^64bit"}},
	{"meta_bg", []string{"-b", "1024", "-O", "meta_bg,^resize_inode"}},
}

var workloads = []struct {
	name string
	run  func(w *wl)
}{
	{"files", func(w *wl) {
		w.create("empty", nil)
		w.create("small", pattern(100, 1))
		w.create("mid", pattern(5000, 2))
		w.create("big", pattern(3<<20+123, 3))
		w.writeAt("big", 70000, pattern(9000, 4)) // overwrite inside
		w.appendTo("mid", pattern(20000, 5))
		w.create("sparse", nil)
		w.writeAt("sparse", 1<<20, pattern(10, 6)) // leaves a hole
		w.truncate("big", 1<<20+17)                // shrink mid-block
		w.truncate("small", 50000)                 // grow: a hole
		w.appendTo("big", pattern(4096, 7))
		w.mkdir("d")
		w.mkdir("d/e")
		w.create("d/e/f", pattern(4097, 8))
		mt := time.Unix(1700000000, 5)
		w.must(w.v.SetTimes(w.ino("d/e/f"), &mt, &mt), "settimes")
	}},
	{"many", func(w *wl) {
		w.mkdir("many")
		for i := range 1000 {
			w.create(fmt.Sprintf("many/file-%04d.conf", i), pattern(i%300, byte(i)))
		}
		for i := 0; i < 1000; i += 3 {
			w.unlink(fmt.Sprintf("many/file-%04d.conf", i))
		}
		for i := range 1000 {
			w.create(fmt.Sprintf("root-%d", i), nil)
		}
	}},
	{"fragment", func(w *wl) {
		for _, n := range []string{"a", "b", "c"} {
			w.create(n, nil)
		}
		for i := range 200 {
			for j, n := range []string{"a", "b", "c"} {
				w.appendTo(n, pattern(int(w.v.sb.blockSize), byte(i+j)))
			}
		}
		w.truncate("a", 3*int(w.v.sb.blockSize)+5) // back to an in-inode tree
		w.unlink("b")
		w.appendTo("c", pattern(100000, 9))
	}},
	{"deletes", func(w *wl) {
		w.mkdir("tmp")
		for i := range 5 {
			w.create(fmt.Sprintf("tmp/f%d", i), pattern(1<<20+i*1000, byte(i)))
		}
		w.symlink("tmp/long", strings.Repeat("x", 300))
		for i := range 5 {
			w.unlink(fmt.Sprintf("tmp/f%d", i))
		}
		w.unlink("tmp/long")
		w.rmdir("tmp")
	}},
	{"rename", func(w *wl) {
		w.mkdir("a")
		w.mkdir("b")
		w.mkdir("a/sub")
		w.create("a/sub/x", pattern(3000, 1))
		w.create("a/f", pattern(10, 2))
		w.create("b/g", pattern(20, 3))
		w.rename("a/f", "a/f2")    // same directory
		w.rename("a/f2", "b/f3")   // across directories
		w.rename("b/f3", "b/g")    // over an existing file
		w.rename("a/sub", "b/sub") // a directory across: '..' moves
		w.mkdir("a/empty")
		w.mkdir("b/target")
		w.rename("a/empty", "b/target") // over an empty directory
		w.create("a/h", pattern(5, 4))
		w.link("a/h", "b/h-link")
		w.rename("a/h", "b/h-link") // names of one file: nothing happens
		w.model["a/h"] = w.model["b/h-link"]
		w.unlink("a/h")
		w.writeAt("b/h-link", 2, []byte("ZZ"))
	}},
	{"symlinks", func(w *wl) {
		w.mkdir("l")
		w.symlink("l/short", "target")
		w.symlink("l/59", strings.Repeat("a", 59))
		w.symlink("l/60", strings.Repeat("b", 60))
		w.symlink("l/long", "/usr/lib/"+strings.Repeat("c/", 200))
	}},
	{"random", func(w *wl) {
		rng := rand.New(rand.NewSource(1))
		dirs := []string{"", "r1", "r2", "r1/r3"}
		for _, d := range dirs[1:] {
			w.mkdir(d)
		}
		var files []string
		for i := range 400 {
			switch op := rng.Intn(6); {
			case op == 0 || len(files) < 3:
				p := path.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("n%d", i))
				w.create(p, pattern(rng.Intn(20000), byte(i)))
				files = append(files, p)
			case op == 1:
				p := files[rng.Intn(len(files))]
				w.writeAt(p, rng.Intn(30000), pattern(rng.Intn(9000)+1, byte(i)))
			case op == 2:
				p := files[rng.Intn(len(files))]
				w.truncate(p, rng.Intn(25000))
			case op == 3:
				k := rng.Intn(len(files))
				w.unlink(files[k])
				files = append(files[:k], files[k+1:]...)
			case op == 4:
				k := rng.Intn(len(files))
				p := path.Join(dirs[rng.Intn(len(dirs))], fmt.Sprintf("m%d", i))
				w.rename(files[k], p)
				files[k] = p
			default:
				p := files[rng.Intn(len(files))]
				w.appendTo(p, pattern(rng.Intn(5000), byte(i)))
			}
		}
	}},
}

// TestWriteWorkloads applies each workload to each kind of mkfs.ext4
// image, then asks e2fsck -fn and debugfs rdump.
func TestWriteWorkloads(t *testing.T) {
	requireE2fs(t)
	testutil.RequireTool(t, "e2fsck", "e2fsprogs")
	for _, im := range writeImages {
		for _, wk := range workloads {
			t.Run(im.name+"/"+wk.name, func(t *testing.T) {
				img := mkfs(t, "ext4", 64, "", im.args...)
				free0 := dumpeFree(t, img)
				v, done := openRW(t, img)
				if r := v.ReadOnlyReason(); r != "" {
					t.Fatalf("read-only: %s", r)
				}
				w := &wl{t: t, v: v, model: map[string]*node{"lost+found": {kind: 'd'}}}
				wk.run(w)
				w.must(v.Sync(), "sync")
				st, _ := v.StatFS()
				done()
				e2fsckClean(t, img)
				if free := dumpeFree(t, img); uint64(free) != st.BlocksFree {
					t.Errorf("StatFS says %d free blocks, dumpe2fs -h %d", st.BlocksFree, free)
				}
				checkTree(t, img, w.model)
				if wk.name == "deletes" {
					if free := dumpeFree(t, img); free != free0 {
						t.Errorf("dumpe2fs -h: %d free blocks after deleting everything, %d before", free, free0)
					}
				}
			})
		}
	}
}

// TestWriteHtree adds to and removes from a directory mkfs filled and
// e2fsck -D indexed: the writer turns it into a linear directory.
func TestWriteHtree(t *testing.T) {
	requireE2fs(t)
	src := t.TempDir()
	os.Mkdir(filepath.Join(src, "big"), 0o755)
	model := map[string]*node{"lost+found": {kind: 'd'}, "big": {kind: 'd'}}
	for i := range 600 {
		p := fmt.Sprintf("big/entry-with-a-long-name-%04d", i)
		os.WriteFile(filepath.Join(src, p), pattern(i, byte(i)), 0o644)
		model[p] = &node{kind: 'f', data: pattern(i, byte(i))}
	}
	img := mkfs(t, "ext4", 64, src)
	exec.Command("e2fsck", "-fyD", img).Run() // exit 1: it optimized directories
	if out := debugfs(t, img, "htree /big", false); !strings.Contains(out, "Root node dump") {
		t.Fatalf("big is not indexed:\n%.500s", out)
	}
	v, done := openRW(t, img)
	w := &wl{t: t, v: v, model: model}
	for i := range 300 {
		w.create(fmt.Sprintf("big/new-%d", i), pattern(10, byte(i)))
	}
	for i := 0; i < 600; i += 7 {
		w.unlink(fmt.Sprintf("big/entry-with-a-long-name-%04d", i))
	}
	w.rename("big/new-1", "moved")
	done()
	t.Log(e2fsckClean(t, img))
	checkTree(t, img, model)
}

// TestWriteConcurrentReads reads the tree while files are created.
func TestWriteConcurrentReads(t *testing.T) {
	requireE2fs(t)
	img := mkfs(t, "ext4", 16, "")
	v, done := openRW(t, img)
	w := &wl{t: t, v: v, model: map[string]*node{"lost+found": {kind: 'd'}}}
	stop := make(chan bool)
	finished := make(chan bool)
	go func() {
		defer close(finished)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ents, _ := v.ReadDir(v.Root())
			for _, e := range ents {
				v.GetAttr(e.Ino)
				v.ReadAt(e.Ino, make([]byte, 100), 0)
			}
		}
	}()
	for i := range 200 {
		w.create(fmt.Sprintf("c%d", i), pattern(i*50, byte(i)))
	}
	close(stop)
	<-finished
	ents, err := v.ReadDir(v.Root())
	if err != nil || len(ents) != 201 {
		t.Errorf("ReadDir after the writes: %d entries, %v", len(ents), err)
	}
	done()
	e2fsckClean(t, img)
	checkTree(t, img, w.model)
}

// TestWriteFallocated: a file with unwritten extents (debugfs
// fallocate) is refused for writing but can be deleted.
func TestWriteFallocated(t *testing.T) {
	requireE2fs(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "fa"), pattern(5000, 1), 0o644)
	img := mkfs(t, "ext4", 16, src, "-b", "4096")
	debugfs(t, img, "fallocate /fa 2 20", true)
	if out := debugfs(t, img, "stat /fa", false); !strings.Contains(out, "[u]") {
		t.Fatalf("no unwritten extent after fallocate:\n%s", out)
	}
	v, done := openRW(t, img)
	a, err := v.Lookup(v.Root(), "fa")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt(a.Ino, []byte("x"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("WriteAt into a fallocated file: %v, want EROFS", err)
	}
	if err := v.Unlink(v.Root(), "fa"); err != nil {
		t.Errorf("Unlink of a fallocated file: %v", err)
	}
	done()
	e2fsckClean(t, img)
	checkTree(t, img, map[string]*node{"lost+found": {kind: 'd'}})
}

// TestWriteErrors checks the errors rename(2) and friends give.
func TestWriteErrors(t *testing.T) {
	requireE2fs(t)
	img := mkfs(t, "ext4", 16, "")
	v, done := openRW(t, img)
	defer done()
	root := v.Root()
	_, err := v.Create(root, "f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Mkdir(root, "d", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	v.Create(d.Ino, "in", 0)
	cases := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"duplicate", func() error { _, e := v.Create(root, "f", 0); return e }(), syscall.EEXIST},
		{"slash", func() error { _, e := v.Create(root, "a/b", 0); return e }(), syscall.EINVAL},
		{"nul", func() error { _, e := v.Create(root, "a\x00", 0); return e }(), syscall.EINVAL},
		{"too long", func() error { _, e := v.Create(root, strings.Repeat("n", 256), 0); return e }(), syscall.ENAMETOOLONG},
		{"rmdir not empty", v.Rmdir(root, "d"), syscall.ENOTEMPTY},
		{"unlink dir", v.Unlink(root, "d"), syscall.EISDIR},
		{"rmdir file", v.Rmdir(root, "f"), syscall.ENOTDIR},
		{"absent", v.Unlink(root, "nope"), syscall.ENOENT},
		{"dir into itself", v.Rename(root, "d", d.Ino, "x"), syscall.EINVAL},
	}
	// Extended attributes are not written: the engine does not offer it,
	// and the FUSE tree refuses setxattr (fs/capability_test.go).
	if _, ok := any(v).(volume.Xattrer); ok {
		t.Error("the ext engine offers extended-attribute writes")
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := v.Create(root, strings.Repeat("n", 255), 0); err != nil {
		t.Errorf("255-byte name: %v", err)
	}
	done()
	e2fsckClean(t, img)
}

// TestReadOnlyReasons checks what stays read-only, and why.
func TestReadOnlyReasons(t *testing.T) {
	requireE2fs(t)
	recover := mkfs(t, "ext4", 16, "")
	debugfs(t, recover, "feature needs_recovery", true)
	cases := []struct {
		name, img, want string
	}{
		{"ext2", mkfs(t, "ext2", 16, ""), "ext2/ext3 block-mapped files are read-only"},
		{"ext3", mkfs(t, "ext3", 16, ""), "ext2/ext3 block-mapped files are read-only"},
		{"needs_recovery", recover, "needs recovery"},
		{"bigalloc", mkfs(t, "ext4", 16, "", "-O", "bigalloc", "-C", "16384"), "bigalloc"},
		{"inline_data", mkfs(t, "ext4", 16, "", "-O", "inline_data"), "inline_data"},
		{"casefold", mkfs(t, "ext4", 16, "", "-O", "casefold"), "casefold"},
	}
	for _, c := range cases {
		v, done := openRW(t, c.img)
		r := v.ReadOnlyReason()
		if !strings.Contains(r, c.want) {
			t.Errorf("%s: reason %q, want %q", c.name, r, c.want)
		}
		if _, err := v.Create(v.Root(), "x", 0); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: Create: %v, want EROFS", c.name, err)
		}
		done()
	}
	v := openImage(t, mkfs(t, "ext4", 16, ""))
	if err := v.Truncate(v.Root(), 0); !errors.Is(err, syscall.EROFS) || v.ReadOnlyReason() == "" {
		t.Errorf("Open (read-only): %v, reason %q", err, v.ReadOnlyReason())
	}
}

// wmemDev is a writable in-memory device for fuzzing.
type wmemDev struct{ memDev }

func (d *wmemDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.b)) {
		return 0, fmt.Errorf("write past end")
	}
	return copy(d.b[off:], p), nil
}

// FuzzWrite opens damaged images writable and changes them: no panics.
func FuzzWrite(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := OpenWritable(&wmemDev{memDev{unpackImage(data)}})
		if err != nil {
			return
		}
		root := v.Root()
		a, err := v.Create(root, "new", 0)
		if err == nil {
			v.WriteAt(a.Ino, bytes.Repeat([]byte("w"), 5000), 100)
			v.Truncate(a.Ino, 10)
		}
		v.Mkdir(root, "nd", 0)
		v.Symlink(root, "sl", strings.Repeat("s", 80))
		ents, _ := v.ReadDir(root)
		for i, e := range ents {
			if i > 6 {
				break
			}
			v.WriteAt(e.Ino, []byte("xyz"), 2000)
			v.Truncate(e.Ino, 1)
			v.Rename(root, e.Name, root, "r"+e.Name)
			v.Unlink(root, "r"+e.Name)
			v.Rmdir(root, "r"+e.Name)
		}
	})
}
