package guestdiff

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/offvm/offvm/fat"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/txn"
)

// fileDev is an image file as a volume.Device.
type fileDev struct{ *os.File }

func (d fileDev) Size() int64 {
	fi, _ := d.Stat()
	return fi.Size()
}

// makeFAT builds a FAT image with mkfs.vfat and mtools holding files
// (name -> content; a name ending in / is a directory), every file
// modified at stamp.
func makeFAT(t *testing.T, stamp time.Time, files map[string]string) *fat.Volume {
	t.Helper()
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mmd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "fat.img")
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("truncate", "-s", "8M", img)
	run("mkfs.vfat", img)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names) // directories before what is in them
	for _, n := range names {
		if n[len(n)-1] == '/' {
			run("mmd", "-i", img, "::/"+n[:len(n)-1])
			continue
		}
		src := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(src, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(src, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		run("mcopy", "-m", "-i", img, src, "::/"+n)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v, err := fat.Open(fileDev{f}, fat.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWalkerFAT(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	a := makeFAT(t, t0, map[string]string{"same.txt": "x", "grow.txt": "ab", "gone.txt": "bye", "d/": "", "d/keep": "k", "old/": "", "old/in": "i"})
	b := makeFAT(t, t0.Add(time.Hour), map[string]string{"same.txt": "x", "grow.txt": "abc", "new.txt": "hello", "d/": "", "d/keep": "k", "d/add": "zz"})
	w := newWalker(a, b, nil)
	if err := w.volume("p1:/", a.Root(), b.Root()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range w.out {
		got = append(got, c.String())
	}
	slices.Sort(got)
	want := []string{
		"+ p1:/d/add (2 B)", "+ p1:/new.txt (5 B)", "- p1:/gone.txt (3 B)",
		"- p1:/old (dir)", "- p1:/old/in (1 B)", "~ p1:/grow.txt (3 B)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("walker found\n%q\nwant\n%q", got, want)
	}
	// "same.txt" has the same size but another mtime: its bytes decide
	for _, c := range w.out {
		if c.Path == "p1:/same.txt" || c.Path == "p1:/d/keep" {
			t.Errorf("unchanged file listed: %v", c)
		}
	}
}

// TestWalkerRenamesFAT: FAT's engine makes its inode numbers up, so
// renames are found by content (a file renamed, one moved to another
// directory, one renamed and changed is not: its bytes differ) and
// directories by what they hold.
func TestWalkerRenamesFAT(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	a := makeFAT(t, t0, map[string]string{"a.txt": "alpha", "mv.bin": "moved bytes", "edit.txt": "one", "keep/": "", "src/": "",
		"src/x": "xx", "src/sub/": "", "src/sub/y": "yyy", "twin1": "same", "gone": "gone!"})
	b := makeFAT(t, t0, map[string]string{"b.txt": "alpha", "keep/": "", "keep/mv.bin": "moved bytes", "edit2.txt": "two", "dst/": "",
		"dst/x": "xx", "dst/sub/": "", "dst/sub/y": "yyy", "twin2": "same", "born": "born!"})
	w := newWalker(a, b, nil)
	if err := w.volume("p1:/", a.Root(), b.Root()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range w.out {
		got = append(got, c.String())
	}
	slices.Sort(got)
	want := []string{
		"+ p1:/born (5 B)", "+ p1:/edit2.txt (3 B)", "- p1:/edit.txt (3 B)", "- p1:/gone (5 B)",
		"> p1:/a.txt -> p1:/b.txt", "> p1:/mv.bin -> p1:/keep/mv.bin", "> p1:/src -> p1:/dst", "> p1:/twin1 -> p1:/twin2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("walker found\n%q\nwant\n%q", got, want)
	}
	if f, _ := Summary(w.out); f != len(want) {
		t.Errorf("summary counts %d files, want %d", f, len(want))
	}
}

func TestShow(t *testing.T) {
	for _, tc := range []struct {
		typ  uint32
		data []byte
		want string
	}{
		{hive.RegSz, []byte("1\x002\x00.\x004\x00\x00\x00"), "12.4"},
		{hive.RegDword, []byte{4, 0, 0, 0}, "4"},
		{hive.RegBinary, []byte{0, 1, 0xff}, "REG_BINARY hex:0001ff"},
		{hive.RegMultiSz, []byte("a\x00\x00\x00b\x00\x00\x00\x00\x00"), `REG_MULTI_SZ a\nb`},
	} {
		if got := show(tc.typ, tc.data); got != tc.want {
			t.Errorf("show(%d, %x) = %q, want %q", tc.typ, tc.data, got, tc.want)
		}
	}
}

// FuzzRecorded: a manifest's recorded changes, however forged, read
// back without a panic and print.
func FuzzRecorded(f *testing.F) {
	f.Add([]byte(`[{"op":">","kind":"file","path":"p1:/b","from":"p1:/a","size":3},{"op":"~","kind":"value","path":"HKLM\\X\\v","old":"1","new":"2"}]`))
	f.Add([]byte(`[{"op":"+","kind":"link","path":"p1:/l","new":"target"}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := Recorded(txn.HistoryCommit{ID: 1, Changes: data})
		if err != nil {
			return
		}
		for _, c := range cs {
			_ = c.String()
		}
		Summary(cs)
	})
}
