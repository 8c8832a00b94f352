package ext

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
	"golang.org/x/sys/unix"
)

// fileDev is a partition held in a host file (read side only matters).
type fileDev struct {
	f    *os.File
	size int64
}

func (d *fileDev) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d *fileDev) WriteAt(p []byte, off int64) (int, error) { return 0, syscall.EROFS }
func (d *fileDev) Size() int64                              { return d.size }

func openImage(t testing.TB, img string) *FS {
	t.Helper()
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, _ := fh.Stat()
	v, err := Open(&fileDev{f: fh, size: st.Size()})
	if err != nil {
		t.Fatalf("Open %s: %v", img, err)
	}
	return v
}

func requireE2fs(t testing.TB) {
	t.Helper()
	testutil.RequireTool(t, "mke2fs", "e2fsprogs")
	testutil.RequireTool(t, "debugfs", "e2fsprogs")
}

// mkfs makes a sparse image of mib MiB with mkfs.<kind> args -d src.
func mkfs(t testing.TB, kind string, mib int, src string, args ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), kind+".img")
	fh, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	fh.Truncate(int64(mib) << 20)
	fh.Close()
	all := append([]string{"-q", "-F", "-L", "offvm-" + kind}, args...)
	if src != "" {
		all = append(all, "-d", src)
	}
	testutil.Run(t, "mkfs."+kind, append(all, img)...)
	return img
}

// debugfs runs one debugfs request (read-only unless w) on img.
func debugfs(t testing.TB, img, req string, w bool) string {
	t.Helper()
	args := []string{"-R", req, img}
	if w {
		args = append([]string{"-w"}, args...)
	}
	cmd := exec.Command("debugfs", args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs %s: %v\n%s", req, err, stderr.String())
	}
	return out.String()
}

// pattern is deterministic, position-dependent content.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

type treeOpts struct {
	huge bool // a 5 GiB sparse file
	many int  // entries in the big directory
}

// buildTree makes the source tree every image is filled from.
func buildTree(t testing.TB, o treeOpts) string {
	t.Helper()
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, perm os.FileMode) {
		p := filepath.Join(src, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, perm))
		must(os.Chmod(p, perm))
	}
	// Sizes around the inline (60), block (1 KiB, 4 KiB), direct (12
	// blocks) and single indirect (12+256 1 KiB blocks) limits.
	for i, n := range []int{0, 1, 59, 60, 61, 1023, 1024, 1025, 4095, 4096, 4097, 12*1024 + 1, 49153, 268*1024 + 5, 3<<20 + 7} {
		write(fmt.Sprintf("size-%d.bin", n), pattern(n, byte(i)), 0o644)
	}
	// Sparse files: data at the given offsets and in the last 5000 bytes
	// (mke2fs -O inline_data drops a trailing hole from the size).
	sparse := func(rel string, size int64, at ...int64) {
		fh, err := os.Create(filepath.Join(src, rel))
		must(err)
		defer fh.Close()
		for i, off := range append(at, size-5000) {
			_, err := fh.WriteAt(pattern(5000, byte(100+i)), off)
			must(err)
		}
	}
	sparse("sparse.bin", 10<<20, 3<<20+100)
	sparse("sparse-triple.bin", 80<<20, 70<<20+3) // triple indirect with 1 KiB blocks
	if o.huge {
		sparse("huge-5g.bin", 5<<30+3, 4<<30+12345) // past 4 GiB: i_size_high
	}
	for i := range o.many {
		write(fmt.Sprintf("many/entry-%04d-with-a-longer-name", i), pattern(i%7, byte(i)), 0o644)
	}
	deep := src
	for i := 1; i <= 20; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("level%02d", i))
	}
	must(os.MkdirAll(deep, 0o755))
	must(os.WriteFile(filepath.Join(deep, "leaf.txt"), []byte("deep leaf\n"), 0o644))
	for _, name := range []string{"héllo wörld.txt", "日本語のファイル名.txt", "emoji-🎉.txt", strings.Repeat("n", 255)} {
		write("unicode/"+name, []byte(name), 0o644)
	}
	links := map[string]string{
		"link-short":    "size-1.bin",
		"link-59":       strings.Repeat("a", 59),
		"link-60":       strings.Repeat("b", 60),
		"link-61":       strings.Repeat("c", 61),
		"link-long":     strings.Repeat("long/", 40) + "target",
		"link-abs":      "/etc/passwd",
		"link-unicode":  "unicode/héllo wörld.txt",
		"link-dangling": "does/not/exist",
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(src, name)))
	}
	write("hard-a", []byte("one file, three names\n"), 0o640)
	must(os.Link(filepath.Join(src, "hard-a"), filepath.Join(src, "hard-b")))
	must(os.Link(filepath.Join(src, "hard-a"), filepath.Join(src, "many", "hard-c")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	write("mode-4755", []byte("#!/bin/sh\n"), 0o755)
	must(os.Chmod(filepath.Join(src, "mode-4755"), 0o755|os.ModeSetuid))
	write("mode-2750", []byte("x"), 0o750)
	must(os.Chmod(filepath.Join(src, "mode-2750"), 0o750|os.ModeSetgid))
	must(os.Mkdir(filepath.Join(src, "sticky"), 0o755))
	must(os.Chmod(filepath.Join(src, "sticky"), 0o777|os.ModeSticky))
	must(os.Mkdir(filepath.Join(src, "empty"), 0o700))
	write("xattr.txt", []byte("has attributes"), 0o644)
	must(unix.Setxattr(filepath.Join(src, "xattr.txt"), "user.color", []byte("blue"), 0))
	must(unix.Setxattr(filepath.Join(src, "xattr.txt"), "user.big", pattern(800, 7), 0))
	write("etc/os-release", []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644)
	write("time-1960.txt", []byte("old"), 0o644)
	must(os.Chtimes(filepath.Join(src, "time-1960.txt"), time.Unix(-300000000, 0), time.Unix(-300000000, 0)))
	// No date past 2038 here: mke2fs -d stores only the low 32 bits of
	// the seconds (debugfs then shows 1963 too); TestDebugfsEdits sets one.
	return src
}

type compareOpts struct {
	nlink     bool // the image keeps hard links (rdump does not)
	lostFound bool // the image has lost+found that src lacks
	linkTimes bool // src symlinks carry the image's times (rdump does not set them)
}

// compareTree walks src on the host and checks every path against v:
// type, permissions, size, link count, mtime, link target, content,
// directory listing.
func compareTree(t *testing.T, v *FS, src string, o compareOpts) int {
	t.Helper()
	n := 0
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			rel = ""
		}
		n++
		a, err := volume.Resolve(v, rel)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		compareAttr(t, v, rel, p, fi, a, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const permBits = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

func compareAttr(t *testing.T, v *FS, rel, p string, fi os.FileInfo, a volume.Attr, o compareOpts) {
	t.Helper()
	st := fi.Sys().(*syscall.Stat_t)
	if a.Mode.Type() != fi.Mode().Type() || a.Mode&permBits != fi.Mode()&permBits {
		t.Errorf("%s: mode %v, source %v", rel, a.Mode, fi.Mode())
	}
	checkTime := rel != "" && (o.linkTimes || fi.Mode()&os.ModeSymlink == 0)
	if checkTime && a.Mtime.Unix() != fi.ModTime().Unix() {
		t.Errorf("%s: mtime %v, source %v", rel, a.Mtime, fi.ModTime())
	}
	if o.nlink && rel != "" && a.Nlink != uint32(st.Nlink) {
		t.Errorf("%s: nlink %d, source %d", rel, a.Nlink, st.Nlink)
	}
	switch {
	case fi.Mode().IsRegular():
		if a.Size != fi.Size() {
			t.Errorf("%s: size %d, source %d", rel, a.Size, fi.Size())
		}
		compareContent(t, v, rel, p, a)
	case fi.Mode()&os.ModeSymlink != 0:
		want, _ := os.Readlink(p)
		got, err := v.Readlink(a.Ino)
		if err != nil || got != want || a.Size != int64(len(want)) {
			t.Errorf("%s: link %q (size %d) %v, source %q", rel, got, a.Size, err, want)
		}
	case fi.IsDir():
		compareListing(t, v, rel, p, a, o)
	}
}

func compareListing(t *testing.T, v *FS, rel, p string, a volume.Attr, o compareOpts) {
	t.Helper()
	ents, err := v.ReadDir(a.Ino)
	if err != nil {
		t.Errorf("%s: ReadDir: %v", rel, err)
		return
	}
	var got, want []string
	for _, e := range ents {
		if rel == "" && o.lostFound && e.Name == "lost+found" {
			continue
		}
		got = append(got, e.Name)
		ea, err := v.GetAttr(e.Ino)
		if err != nil || ea.Mode.Type() != e.Mode.Type() {
			t.Errorf("%s/%s: entry type %v, inode %v %v", rel, e.Name, e.Mode, ea.Mode, err)
		}
	}
	des, _ := os.ReadDir(p)
	for _, d := range des {
		want = append(want, d.Name())
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: listing has %d names, source %d", rel, len(got), len(want))
	}
}

// compareContent checks every data segment of the source (SEEK_DATA), a
// sample of each hole, and the last bytes with io.EOF.
func compareContent(t *testing.T, v *FS, rel, p string, a volume.Attr) {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	size := a.Size
	var ranges [][2]int64
	if size <= 16<<20 {
		ranges = append(ranges, [2]int64{0, size})
	} else {
		for off := int64(0); off < size; {
			data, err := unix.Seek(int(fh.Fd()), off, unix.SEEK_DATA)
			if err != nil {
				break
			}
			hole, _ := unix.Seek(int(fh.Fd()), data, unix.SEEK_HOLE)
			ranges = append(ranges, [2]int64{max(off, data-65536), hole})
			off = hole
		}
		ranges = append(ranges, [2]int64{size - 100000, size})
	}
	for _, r := range ranges {
		for off := r[0]; off < r[1]; off += 1 << 20 {
			n := min(1<<20, r[1]-off)
			want := make([]byte, n)
			got := make([]byte, n+1) // one byte more: expect io.EOF at the end
			if _, err := fh.ReadAt(want, off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			m, err := v.ReadAt(a.Ino, got, off)
			atEnd := off+n == size
			if atEnd && !errors.Is(err, io.EOF) || !atEnd && err != nil || int64(m) != min(n+1, size-off) {
				t.Errorf("%s: ReadAt(%d, %d) = %d, %v", rel, n+1, off, m, err)
				return
			}
			if sha256.Sum256(got[:n]) != sha256.Sum256(want) {
				t.Errorf("%s: content differs in [%d, %d)", rel, off, off+n)
				return
			}
		}
	}
}

// unixMode is a mode as ext stores it (and debugfs prints it).
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	switch {
	case m.IsDir():
		u |= sIFDIR
	case m&os.ModeSymlink != 0:
		u |= sIFLNK
	case m&os.ModeNamedPipe != 0:
		u |= sIFIFO
	case m&os.ModeSocket != 0:
		u |= sIFSOCK
	case m&os.ModeCharDevice != 0:
		u |= sIFCHR
	case m&os.ModeDevice != 0:
		u |= sIFBLK
	default:
		u |= sIFREG
	}
	return u
}

// compareDebugfs checks a directory's listing against `debugfs ls -p`:
// the same inode numbers, names and modes.
func compareDebugfs(t *testing.T, v *FS, img, dir string) {
	t.Helper()
	a, err := volume.Resolve(v, dir)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	ents, err := v.ReadDir(a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(debugfs(t, img, "ls -p "+dir, false), "\n") {
		f := strings.Split(line, "/")
		// Inode 0: an empty record debugfs shows (e2fsck -D leaves some).
		if len(f) < 7 || f[5] == "." || f[5] == ".." || f[1] == "0" {
			continue
		}
		want[f[1]+" "+f[5]] = f[2]
	}
	if len(ents) != len(want) {
		t.Errorf("debugfs ls %s: %d entries, we list %d", dir, len(want), len(ents))
	}
	for _, e := range ents {
		ea, err := v.GetAttr(e.Ino)
		if err != nil {
			t.Errorf("%s/%s: %v", dir, e.Name, err)
			continue
		}
		got := fmt.Sprintf("%06o", unixMode(ea.Mode))
		if w := want[strconv.FormatUint(uint64(e.Ino), 10)+" "+e.Name]; w != got {
			t.Errorf("%s: %s, inode %d: debugfs says mode %q, we say %q", dir, e.Name, e.Ino, w, got)
		}
	}
}
