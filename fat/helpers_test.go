package fat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// fileDev is a partition held in a host file, at an offset (GPT tests).
type fileDev struct {
	f         *os.File
	off, size int64
}

func (d *fileDev) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, d.off+off) }
func (d *fileDev) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, d.off+off) }
func (d *fileDev) Size() int64                              { return d.size }

func openDev(t *testing.T, img string, off, size int64) *fileDev {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if size == 0 {
		st, _ := f.Stat()
		size = st.Size() - off
	}
	return &fileDev{f: f, off: off, size: size}
}

// format is one mkfs.vfat configuration.
type format struct {
	name    string
	fat     int
	sector  int
	cluster int // sectors per cluster
	mib     int
}

var formats = []format{
	{"fat12-512", 12, 512, 8, 8},
	{"fat12-4096", 12, 4096, 1, 8},
	{"fat16-512", 16, 512, 4, 32},
	{"fat16-4096", 16, 4096, 1, 24},
	{"fat16-512-32k", 16, 512, 64, 200},
	{"fat32-512", 32, 512, 1, 40},
	{"fat32-4096", 32, 4096, 1, 260},
}

func requireTools(t *testing.T) {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "fsck.fat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
}

// mkfs makes a sparse image file formatted by mkfs.vfat.
func mkfs(t *testing.T, f format, label string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), f.name+".img")
	fh, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	fh.Truncate(int64(f.mib) << 20)
	fh.Close()
	args := []string{"-F", fmt.Sprint(f.fat), "-S", fmt.Sprint(f.sector), "-s", fmt.Sprint(f.cluster)}
	if label != "" {
		args = append(args, "-n", label)
	}
	testutil.Run(t, "mkfs.vfat", append(args, img)...)
	return img
}

// mtools runs an mtools command on img with a UTF-8 locale.
func mtools(t *testing.T, tool string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8", "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fsckClean runs fsck.fat -n and fails on anything but the version and
// summary lines.
func fsckClean(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 || !strings.Contains(lines[1], " files, ") {
		t.Fatalf("fsck.fat -n %s: %v\n%s", img, err, out)
	}
	return lines[1]
}

// model is the expected tree: paths ("/a/b") of directories and files.
type model struct {
	dirs  map[string]bool
	files map[string][]byte
}

func newModel() *model { return &model{dirs: map[string]bool{}, files: map[string][]byte{}} }

// find returns the stored spelling of p, matched case-insensitively.
func (m *model) find(p string) (string, bool) {
	for k := range m.dirs {
		if strings.EqualFold(k, p) {
			return k, true
		}
	}
	for k := range m.files {
		if strings.EqualFold(k, p) {
			return k, true
		}
	}
	return "", false
}

// rename moves p (and everything under it) to q.
func (m *model) rename(p, q string) {
	if old, ok := m.find(q); ok && old != p {
		delete(m.files, old)
		delete(m.dirs, old)
	}
	move := func(k string) (string, bool) {
		if k == p {
			return q, true
		}
		if strings.HasPrefix(k, p+"/") {
			return q + k[len(p):], true
		}
		return "", false
	}
	for k, d := range m.files {
		if nk, ok := move(k); ok {
			delete(m.files, k)
			m.files[nk] = d
		}
	}
	dirs := map[string]bool{}
	for k := range m.dirs {
		if nk, ok := move(k); ok {
			dirs[nk] = true
		} else {
			dirs[k] = true
		}
	}
	m.dirs = dirs
}

// checkMtools proves the image holds exactly the model: fsck.fat -n is
// clean, mdir lists exactly its paths and mcopy copies out its bytes.
func checkMtools(t *testing.T, img string, m *model) {
	t.Helper()
	fsckClean(t, img)
	var want []string
	for d := range m.dirs {
		want = append(want, d+"/")
	}
	for f := range m.files {
		want = append(want, f)
	}
	sort.Strings(want)
	var got []string
	if len(want) > 0 {
		for _, l := range strings.Split(mtools(t, "mdir", "-/", "-a", "-b", "-i", img, "::"), "\n") {
			if l = strings.TrimPrefix(l, "::"); l != "" {
				got = append(got, l)
			}
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("mdir lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(m.files) == 0 {
		return
	}
	out := t.TempDir()
	mtools(t, "mcopy", "-s", "-n", "-i", img, "::*", out+"/")
	for p, data := range m.files {
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p)))
		if err != nil {
			t.Fatalf("mcopy out: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("%s: mcopy gives %d bytes, want %d (first difference at %d)", p, len(b), len(data), testutil.FirstDiff(b, data))
		}
	}
}

// resolve walks a path with Lookup.
func resolve(t *testing.T, v *Volume, p string) volume.Ino {
	t.Helper()
	ino := v.Root()
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		a, err := v.Lookup(ino, part)
		if err != nil {
			t.Fatalf("lookup %s: %v", p, err)
		}
		ino = a.Ino
	}
	return ino
}

func split(p string) (string, string) { return path.Dir(p), path.Base(p) }

func wantErrno(t *testing.T, err error, want syscall.Errno) {
	t.Helper()
	var e syscall.Errno
	if !errors.As(err, &e) || e != want {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(x T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
}

func sortStrings(s []string) { sort.Strings(s) }

func osexecCombined(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

func formatNamed(names ...string) []format {
	var out []format
	for _, n := range names {
		for _, f := range formats {
			if f.name == n {
				out = append(out, f)
			}
		}
	}
	return out
}
