package ext

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/volume"
)

// formats are the mkfs configurations every test tree is written with.
var formats = []struct {
	name, kind string
	args       []string
	typ        string
	full       bool // the 3,000-entry directory and a 5 GiB sparse file
}{
	{"ext2-1k", "ext2", []string{"-b", "1024"}, "ext2", true},
	{"ext2-4k-i128", "ext2", []string{"-b", "4096", "-I", "128"}, "ext2", false},
	{"ext2-nofiletype", "ext2", []string{"-b", "2048", "-O", "^filetype,^dir_index"}, "ext2", false},
	{"ext3-1k", "ext3", []string{"-b", "1024"}, "ext3", false},
	{"ext3-4k", "ext3", []string{"-b", "4096"}, "ext3", true},
	{"ext4-4k", "ext4", []string{"-b", "4096"}, "ext4", true},
	{"ext4-1k", "ext4", []string{"-b", "1024"}, "ext4", false},
	{"ext4-noextents", "ext4", []string{"-b", "1024", "-O", "^extents,^64bit"}, "ext4", false},
	{"ext4-i128", "ext4", []string{"-I", "128"}, "ext4", false},
	{"ext4-inline", "ext4", []string{"-O", "inline_data"}, "ext4", true},
	{"ext4-32bit-nocsum", "ext4", []string{"-O", "^64bit,^metadata_csum"}, "ext4", false},
	{"ext4-metabg", "ext4", []string{"-b", "1024", "-O", "meta_bg,^resize_inode", "-g", "1024"}, "ext4", false},
	{"ext4-64k", "ext4", []string{"-b", "65536", "-N", "4096"}, "ext4", false},
	{"ext4-bigalloc", "ext4", []string{"-O", "bigalloc", "-C", "16384"}, "ext4", false},
}

// TestTree fills each format from the same source tree with mkfs -d and
// compares our walk with the source, and listings with debugfs.
func TestTree(t *testing.T) {
	requireE2fs(t)
	// Most formats get 300 entries in "many", already a hash-tree
	// directory; mke2fs -d takes seconds for 3,000.
	small := buildTree(t, treeOpts{many: 300})
	full := buildTree(t, treeOpts{huge: true, many: 3000})
	for _, fm := range formats {
		t.Run(fm.name, func(t *testing.T) {
			t.Parallel()
			s, many := small, 300
			if fm.full {
				s, many = full, 3000
			}
			mib := 64
			if fm.name == "ext4-64k" {
				mib = 256 // 300 files of one 64 KiB block each
			}
			img := mkfs(t, fm.kind, mib, s, fm.args...)
			v := openImage(t, img)
			if v.Type() != fm.typ || v.Label() != "offvm-"+fm.kind || v.Root() != 2 || v.NeedsRecovery() {
				t.Errorf("type %q label %q root %d recovery %v", v.Type(), v.Label(), v.Root(), v.NeedsRecovery())
			}
			n := compareTree(t, v, s, compareOpts{nlink: true, lostFound: true, linkTimes: true})
			if n < many {
				t.Errorf("walked only %d paths", n)
			}
			for _, d := range []string{"/", "/many", "/unicode", "/level01/level02/level03"} {
				compareDebugfs(t, v, img, d)
			}
			checkHardLinks(t, v)
			checkXattrs(t, v)
			checkStatFS(t, v, img)
		})
	}
}

func checkHardLinks(t *testing.T, v *FS) {
	t.Helper()
	var inos []volume.Ino
	for _, p := range []string{"hard-a", "hard-b", "many/hard-c"} {
		a, err := volume.Resolve(v, p)
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, a.Ino)
	}
	if inos[0] != inos[1] || inos[0] != inos[2] {
		t.Errorf("hard links have inodes %v", inos)
	}
}

func checkXattrs(t *testing.T, v *FS) {
	t.Helper()
	a, err := volume.Resolve(v, "xattr.txt")
	if err != nil {
		t.Fatal(err)
	}
	names, err := v.ListXattr(a.Ino)
	if err != nil || strings.Join(names, ",") != "user.big,user.color" && strings.Join(names, ",") != "user.color,user.big" {
		t.Errorf("ListXattr = %q, %v", names, err)
	}
	if val, err := v.GetXattr(a.Ino, "user.color"); err != nil || string(val) != "blue" {
		t.Errorf("user.color = %q, %v", val, err)
	}
	if val, err := v.GetXattr(a.Ino, "user.big"); err != nil || !bytes.Equal(val, pattern(800, 7)) {
		t.Errorf("user.big: %d bytes, %v", len(val), err)
	}
	if _, err := v.GetXattr(a.Ino, "user.absent"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("absent xattr: %v", err)
	}
}

// checkStatFS compares with dumpe2fs -h.
func checkStatFS(t *testing.T, v *FS, img string) {
	t.Helper()
	st, _ := v.StatFS()
	out := runOut(t, "dumpe2fs", "-h", img)
	for _, want := range []string{
		"Block count:              " + itoa(st.Blocks),
		"Free blocks:              " + itoa(st.BlocksFree),
		"Inode count:              " + itoa(st.Files),
		"Free inodes:              " + itoa(st.FilesFree),
		"Block size:               " + itoa(uint64(st.BlockSize)),
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("dumpe2fs -h lacks %q", want)
		}
	}
}

// TestErrors checks the error values the FUSE layer maps.
func TestErrors(t *testing.T) {
	requireE2fs(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "file"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(src, "dir"), 0o755)
	v := openImage(t, mkfs(t, "ext4", 8, src))
	file, _ := volume.Resolve(v, "file")
	dir, _ := volume.Resolve(v, "dir")
	tests := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"lookup absent", second(v.Lookup(v.Root(), "absent")), syscall.ENOENT},
		{"lookup in file", second(v.Lookup(file.Ino, "x")), syscall.ENOTDIR},
		{"readdir file", second(v.ReadDir(file.Ino)), syscall.ENOTDIR},
		{"resolve through file", second(volume.Resolve(v, "file/x")), syscall.ENOTDIR},
		{"readlink file", second(v.Readlink(file.Ino)), syscall.EINVAL},
		{"read dir", second(v.ReadAt(dir.Ino, make([]byte, 1), 0)), syscall.EISDIR},
		{"inode 0", second(v.GetAttr(0)), syscall.ENOENT},
		{"inode past the end", second(v.GetAttr(1 << 40)), syscall.ENOENT},
		{"unused inode", second(v.GetAttr(1000)), syscall.ENOENT},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if n, err := v.ReadAt(file.Ino, make([]byte, 10), 5); n != 0 || err != io.EOF {
		t.Errorf("read past end: %d, %v", n, err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestDebugfsEdits changes inodes with debugfs -w (a tool we did not
// write) and checks what we then read: nanosecond and post-2038 times as
// debugfs prints them, the encrypt flag, needs_recovery.
func TestDebugfsEdits(t *testing.T) {
	requireE2fs(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("content"), 0o644)
	os.WriteFile(filepath.Join(src, "secret"), []byte("ciphertext"), 0o644)
	img := mkfs(t, "ext3", 8, src, "-I", "256")
	debugfs(t, img, "set_inode_field /f mtime 20991231235958", true)
	debugfs(t, img, "set_inode_field /f mtime_extra 0x1d6f3451", true)
	debugfs(t, img, "set_inode_field /f atime 19600101000000", true)
	debugfs(t, img, "set_inode_field /secret flags 0x800", true)
	debugfs(t, img, "feature needs_recovery", true)
	v := openImage(t, img)
	if !v.NeedsRecovery() || v.Type() != "ext3" {
		t.Errorf("NeedsRecovery %v, type %s", v.NeedsRecovery(), v.Type())
	}
	a, err := volume.Resolve(v, "f")
	if err != nil {
		t.Fatal(err)
	}
	// debugfs stat prints " mtime: 0xSECS:EXTRA -- <date>"; its date is
	// what we must decode to, and the nanoseconds are EXTRA>>2.
	stat := debugfs(t, img, "stat /f", false)
	for _, c := range []struct {
		field string
		got   time.Time
	}{{"mtime", a.Mtime}, {"atime", a.Atime}} {
		date, extra := statTime(t, stat, c.field)
		want, err := time.Parse("Mon Jan _2 15:04:05 2006", date)
		if err != nil {
			t.Fatalf("%s: %v", c.field, err)
		}
		if !c.got.Truncate(time.Second).Equal(want) || c.got.Nanosecond() != int(extra>>2) {
			t.Errorf("%s: we read %v, debugfs says %s (extra %#x)", c.field, c.got.UTC(), date, extra)
		}
	}
	if a.Mtime.Year() != 2099 || a.Atime.Year() != 1960 {
		t.Errorf("mtime %v atime %v", a.Mtime, a.Atime)
	}
	sec, _ := volume.Resolve(v, "secret")
	if _, err := v.ReadAt(sec.Ino, make([]byte, 4), 0); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("encrypted read: %v", err)
	}
	if b, err := volume.ReadFile(v, "f", 100); err != nil || string(b) != "content" {
		t.Errorf("ReadFile: %q %v", b, err)
	}
}
