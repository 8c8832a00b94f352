package ext

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	{"ext4-metabg", "ext4", []string{"-b", "1024", "-O", "meta_bg,^resize_inode", "-g", "256", "-N", "2048"}, "ext4", false},
	{"ext4-64k", "ext4", []string{"-b", "65536", "-N", "4096"}, "ext4", false},
	{"ext4-bigalloc", "ext4", []string{"-O", "bigalloc", "-C", "16384"}, "ext4", false},
	{"ext2-rev0", "ext2", []string{"-r", "0"}, "ext2", false},
	{"ext4-sparse_super2", "ext4", []string{"-O", "sparse_super2"}, "ext4", false},
	{"ext4-largedir-noflex", "ext4", []string{"-O", "large_dir,^flex_bg"}, "ext4", false},
	{"ext4-nojournal-noindex", "ext4", []string{"-O", "^has_journal,^dir_index"}, "ext4", false},
	{"ext4-casefold", "ext4", []string{"-O", "casefold"}, "ext4", false},
}

// linearDirs are the formats without hash-tree directories: no dir_index,
// or 64 KiB blocks that hold all of /many in one.
var linearDirs = map[string]bool{
	"ext2-nofiletype": true, "ext2-rev0": true, "ext4-nojournal-noindex": true, "ext4-64k": true,
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
			if !linearDirs[fm.name] {
				e2fsckIndex(t, img)
			}
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
			// debugfs confirms which code paths the tree exercised.
			if !linearDirs[fm.name] && debugfsFlags(t, img, "/many")&0x1000 == 0 {
				t.Errorf("/many is not a hash-tree directory")
			}
			if fm.name == "ext4-inline" {
				for _, p := range []string{"/size-61.bin", "/empty", "/link-61", "/level01/level02"} {
					if debugfsFlags(t, img, p)&flagInlineData == 0 {
						t.Errorf("%s is not inline", p)
					}
				}
			}
			checkBlocks(t, v, img, "sparse.bin", "size-3145735.bin", "size-0.bin", "many")
			checkHardLinks(t, v)
			if fm.name != "ext2-rev0" { // no ext_attr feature
				checkXattrs(t, v)
			}
			checkStatFS(t, v, img)
		})
	}
}

// e2fsckIndex has e2fsck -D turn the large directories into hash trees
// (mke2fs -d writes them linear).
func e2fsckIndex(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
	}
}

// debugfsFlags is an inode's i_flags as debugfs stat prints them.
func debugfsFlags(t *testing.T, img, p string) uint32 {
	t.Helper()
	stat := debugfs(t, img, "stat "+p, false)
	_, rest, ok := strings.Cut(stat, "Flags: 0x")
	x, err := strconv.ParseUint(strings.Fields(rest + " ")[0], 16, 32)
	if !ok || err != nil {
		t.Fatalf("no flags in debugfs stat %s:\n%s", p, stat)
	}
	return uint32(x)
}

// checkBlocks compares Attr.Blocks with debugfs stat's Blockcount (both
// in 512-byte units without huge_file's block-unit flag).
func checkBlocks(t *testing.T, v *FS, img string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		a, err := volume.Resolve(v, p)
		if err != nil {
			t.Fatal(err)
		}
		stat := debugfs(t, img, "stat /"+p, false)
		_, rest, _ := strings.Cut(stat, "Blockcount: ")
		want, err := strconv.ParseInt(strings.Fields(rest + " ")[0], 10, 64)
		if err != nil || a.Blocks != want {
			t.Errorf("%s: Blocks %d, debugfs Blockcount %d (%v)", p, a.Blocks, want, err)
		}
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

// TestConcurrent walks one file system from several goroutines at once
// (run with -race), each checking against the source tree.
func TestConcurrent(t *testing.T) {
	requireE2fs(t)
	src := buildTree(t, treeOpts{many: 500})
	v := openImage(t, mkfs(t, "ext4", 64, src, "-b", "1024"))
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			compareTree(t, v, src, compareOpts{nlink: true, lostFound: true, linkTimes: true})
		}()
	}
	for range 4 {
		<-done
	}
}

// TestDamage damages images with real tools (truncate, debugfs -w) and
// checks that reads give EIO with a cause, not a panic or wrong data.
func TestDamage(t *testing.T) {
	requireE2fs(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "big"), pattern(3<<20, 3), 0o644)
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "m"), pattern(100000, 4), 0o644)

	img := mkfs(t, "ext4", 64, src, "-b", "4096")
	debugfs(t, img, "set_inode_field /d block[0] 0", true)          // extent header magic
	debugfs(t, img, "set_inode_field /m block[0] 0x0050f30a", true) // 80 entries, max 4
	// Cut the image one block into "big" (mke2fs -d writes it last).
	bmap := strings.TrimSpace(debugfs(t, img, "bmap /big 0", false))
	first, err := strconv.ParseInt(bmap, 10, 64)
	if err != nil {
		t.Fatalf("bmap: %q", bmap)
	}
	if err := os.Truncate(img, (first+1)*4096); err != nil {
		t.Fatal(err)
	}
	v := openImage(t, img)
	for _, c := range []struct {
		path, cause string
		read        func(a volume.Attr) error
	}{
		{"d", "magic", func(a volume.Attr) error { return second(v.ReadDir(a.Ino)) }},
		{"m", "entries", func(a volume.Attr) error { return second(v.ReadAt(a.Ino, make([]byte, 10), 0)) }},
		{"big", "past the", func(a volume.Attr) error { return second(v.ReadAt(a.Ino, make([]byte, 1<<20), 4096)) }},
	} {
		a, err := volume.Resolve(v, c.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.read(a); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), c.cause) {
			t.Errorf("%s: %v, want EIO mentioning %q", c.path, err, c.cause)
		}
	}
}

// TestEAInode has debugfs store a value in an inode of its own
// (ea_inode; debugfs takes one block of the file given) and a small one
// in the inode body; debugfs ea_get is the oracle for the value.
func TestEAInode(t *testing.T) {
	requireE2fs(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	img := mkfs(t, "ext4", 16, src, "-b", "4096", "-O", "ea_inode")
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "in"), pattern(20000, 9), 0o644)
	debugfs(t, img, "ea_set -f "+filepath.Join(tmp, "in")+" /f user.huge", true)
	debugfs(t, img, "ea_set /f user.small tiny", true)
	debugfs(t, img, "ea_get -f "+filepath.Join(tmp, "out")+" /f user.huge", false)
	want, err := os.ReadFile(filepath.Join(tmp, "out"))
	if err != nil || len(want) < 4000 {
		t.Fatalf("debugfs ea_get: %d bytes, %v", len(want), err)
	}
	v := openImage(t, img)
	a, err := volume.Resolve(v, "f")
	if err != nil {
		t.Fatal(err)
	}
	var eaInodes int
	for ino := 12; ino < 20; ino++ {
		if st := debugfs(t, img, fmt.Sprintf("stat <%d>", ino), false); strings.Contains(st, "Flags: 0x28") {
			eaInodes++
		}
	}
	if eaInodes != 1 {
		t.Errorf("debugfs shows %d ea_inode inodes", eaInodes)
	}
	names, err := v.ListXattr(a.Ino)
	if err != nil || len(names) != 2 {
		t.Errorf("ListXattr = %q, %v", names, err)
	}
	if got, err := v.GetXattr(a.Ino, "user.huge"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("user.huge: %d bytes, %v", len(got), err)
	}
	if got, err := v.GetXattr(a.Ino, "user.small"); err != nil || string(got) != "tiny" {
		t.Errorf("user.small: %q, %v", got, err)
	}
}
