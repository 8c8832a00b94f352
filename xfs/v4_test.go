package xfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

// v4 (crc=0) file systems are written too. This machine's kernel no
// longer mounts them, so the kernel side of these tests is libguestfs'
// appliance running Debian's kernel (CONFIG_XFS_SUPPORT_V4=y); where it
// is absent, xfs_repair -n and xfs_db (directory listings, file bytes
// read block by block) are the outside view.

// guestfishV4 says why no v4-capable libguestfs appliance is here, or "".
func guestfishV4() string {
	if _, err := exec.LookPath("guestfish"); err != nil {
		return "guestfish (libguestfs-tools) is not installed"
	}
	cfgs, _ := filepath.Glob("/boot/config-*")
	for _, c := range cfgs {
		b, _ := os.ReadFile(c)
		if bytes.Contains(b, []byte("\nCONFIG_XFS_SUPPORT_V4=y")) {
			if _, err := os.Stat(strings.Replace(c, "/config-", "/vmlinuz-", 1)); err == nil {
				return ""
			}
		}
	}
	return "no kernel in /boot has CONFIG_XFS_SUPPORT_V4=y for the libguestfs appliance"
}

// guestfish runs script in one appliance over disks (each launch costs
// tens of seconds under TCG, so callers batch their commands).
func guestfish(t *testing.T, script string, disks ...string) string {
	t.Helper()
	args := []string{}
	for _, d := range disks {
		args = append(args, "-a", d)
	}
	cmd := exec.Command("guestfish", args...)
	cmd.Env = os.Environ()
	if os.Getenv("LIBGUESTFS_BACKEND") == "" {
		// KVM fails here ("failed to set MSR"); TCG works everywhere
		cmd.Env = append(cmd.Env, "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	}
	cmd.Stdin = strings.NewReader("run\n" + script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("guestfish: %v\n%s", err, out)
	}
	return string(out)
}

// v4Tree makes the files the v4 tests start from: a short-form /etc, a
// block (60 names), a leaf (250) and a node (700) directory, files
// small and large, a fragmented one (600 extents, a B+tree once the
// kernel writes it) and a hard link.
func v4Tree(t *testing.T, root string) {
	w := func(p string, b []byte) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("etc/hostname", []byte("centos7\n"))
	w("etc/motd", pattern(10000, 1))
	w("opt/app.bin", pattern(1<<20, 2))
	w("var/log/big", pattern(2<<20, 3))
	w("var/small", pattern(100, 4))
	fr, _ := os.Create(filepath.Join(root, "var/frag"))
	for i := 0; i < 600; i++ {
		fr.WriteAt(bytes.Repeat([]byte{byte(i)}, 4096), int64(i)*8192)
	}
	fr.Close()
	os.Link(filepath.Join(root, "etc/hostname"), filepath.Join(root, "etc/hostname.hard"))
	for i := 0; i < 60; i++ {
		w(fmt.Sprintf("usr/share/many/file-%03d", i), nil)
	}
	for i := 0; i < 250; i++ {
		w(fmt.Sprintf("usr/lib/lots/library-%04d.so", i), nil)
	}
	for i := 0; i < 700; i++ {
		w(fmt.Sprintf("usr/bin/program-%04d", i), nil)
	}
}

// v4Image is a v4 XFS (mkfs.xfs options args) holding v4Tree, written
// by the appliance's kernel when kernel is set (and a preallocated
// var/prealloc), else by mkfs.xfs -p from a protofile.
func v4Image(t *testing.T, kernel bool, args ...string) string {
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	v4Tree(t, src)
	img := filepath.Join(dir, "v4.img")
	testutil.Run(t, "truncate", "-s", "400M", img)
	args = append([]string{"-q", "-f", "-m", "crc=0"}, args...)
	if !kernel {
		testutil.Run(t, "mkfs.xfs", append(args, "-p", protofile(t, src), img)...)
		return img
	}
	testutil.Run(t, "mkfs.xfs", append(args, img)...)
	tar := filepath.Join(dir, "src.tar")
	testutil.Run(t, "tar", "--sparse", "-C", src, "-cf", tar, ".")
	guestfish(t, fmt.Sprintf("mount /dev/sda /\ntar-in %s /\nfallocate64 /var/prealloc 1048576\numount-all\n", tar), img)
	return img
}

// v4Op is one change, through offvm and as guestfish commands.
type v4Op struct {
	name  string
	offvm func(f *FS, ino func(string) volume.Ino) error
	fish  func(local func([]byte) string) string
}

func v4Write(p string, off int64, data []byte) v4Op {
	return v4Op{"write " + p,
		func(f *FS, ino func(string) volume.Ino) error { _, err := f.WriteAt(ino(p), data, off); return err },
		func(local func([]byte) string) string {
			return fmt.Sprintf("upload-offset %s /%s %d", local(data), p, off)
		}}
}

func v4Create(dir, name string, mode os.FileMode, data []byte) v4Op {
	p := filepath.Join("/", dir, name)
	return v4Op{"create " + p,
		func(f *FS, ino func(string) volume.Ino) error {
			a, err := f.Create(ino(dir), name, mode)
			if err == nil && len(data) > 0 {
				_, err = f.WriteAt(a.Ino, data, 0)
			}
			return err
		},
		func(local func([]byte) string) string {
			s := fmt.Sprintf("touch %s\nchmod 0%o %s", p, mode, p)
			if len(data) > 0 {
				s += fmt.Sprintf("\nupload-offset %s %s 0", local(data), p)
			}
			return s
		}}
}

func v4Many(dir, prefix string, n int) v4Op {
	return v4Op{fmt.Sprintf("%d names in %s", n, dir),
		func(f *FS, ino func(string) volume.Ino) error { return grow(f, ino(dir), prefix, n) },
		func(func([]byte) string) string {
			var b strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "touch /%s/%s%04d\nchmod 0644 /%s/%s%04d\n", dir, prefix, i, dir, prefix, i)
			}
			return strings.TrimSuffix(b.String(), "\n")
		}}
}

func v4Xattr(p, name string, n int) v4Op {
	v := strings.Repeat(name[5:6], n)
	return v4Op{"setxattr " + name,
		func(f *FS, ino func(string) volume.Ino) error { return f.SetXattr(ino(p), name, []byte(v)) },
		func(func([]byte) string) string { return fmt.Sprintf("setxattr %s %s %d /%s", name, v, n, p) }}
}

func v4Xattrs(p string, n int) v4Op {
	return v4Op{fmt.Sprintf("%d xattrs on %s", n, p),
		func(f *FS, ino func(string) volume.Ino) error {
			for i := 0; i < n; i++ {
				if err := f.SetXattr(ino(p), fmt.Sprintf("user.many-%03d", i), bytes.Repeat([]byte{'a' + byte(i%26)}, 100)); err != nil {
					return err
				}
			}
			return nil
		},
		func(func([]byte) string) string {
			var b strings.Builder
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "setxattr user.many-%03d %s 100 /%s\n", i, strings.Repeat(string(rune('a'+i%26)), 100), p)
			}
			return strings.TrimSuffix(b.String(), "\n")
		}}
}

func v4Simple(name string, offvm func(f *FS, ino func(string) volume.Ino) error, fish string) v4Op {
	return v4Op{name, offvm, func(func([]byte) string) string { return fish }}
}

var v4Mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func v4Workload() []v4Op {
	long := strings.Repeat("a/long/target/", 60)
	ops := []v4Op{
		v4Write("etc/hostname", 0, []byte("guest-patched.example\n")),
		v4Write("etc/motd", 10000, pattern(200000, 5)),
		v4Write("opt/app.bin", 123457, pattern(5000, 6)),
		v4Simple("truncate opt/app.bin", func(f *FS, ino func(string) volume.Ino) error { return f.Truncate(ino("opt/app.bin"), 300001) },
			"truncate-size /opt/app.bin 300001"),
		v4Simple("truncate var/log/big", func(f *FS, ino func(string) volume.Ino) error { return f.Truncate(ino("var/log/big"), 0) },
			"truncate-size /var/log/big 0"),
		v4Simple("truncate var/small", func(f *FS, ino func(string) volume.Ino) error { return f.Truncate(ino("var/small"), 50000) },
			"truncate-size /var/small 50000"),
		v4Write("var/small", 1<<20, []byte("tail")),
		v4Write("var/small", 60, pattern(9000, 7)),
		v4Write("var/frag", 8192*3+100, []byte("frag-in-place")),
		v4Write("var/frag", 600*8192, []byte("past the end")),
		v4Create("etc", "new.conf", 0o640, pattern(5000, 11)),
		v4Create("", "README.offvm", 0o644, nil),
		v4Create("opt", "agent.bin", 0o755, pattern(300000, 12)),
		v4Simple("mkdir etc/new.d", func(f *FS, ino func(string) volume.Ino) error { _, e := f.Mkdir(ino("etc"), "new.d", 0o750); return e },
			"mkdir-mode /etc/new.d 0750"),
		v4Simple("symlink", func(f *FS, ino func(string) volume.Ino) error {
			_, e := f.Symlink(ino("etc"), "link", "/etc/new.d/moved.conf")
			return e
		},
			"ln-s /etc/new.d/moved.conf /etc/link"),
		v4Simple("remote symlink", func(f *FS, ino func(string) volume.Ino) error { _, e := f.Symlink(ino("opt"), "long", long); return e },
			"ln-s "+long+" /opt/long"),
		v4Simple("link", func(f *FS, ino func(string) volume.Ino) error {
			_, e := f.Link(ino("opt/agent.bin"), ino("opt"), "agent.hard")
			return e
		},
			"ln /opt/agent.bin /opt/agent.hard"),
		v4Simple("rename into a subdirectory", func(f *FS, ino func(string) volume.Ino) error {
			return f.Rename(ino("etc"), "new.conf", ino("etc/new.d"), "moved.conf")
		}, "mv /etc/new.conf /etc/new.d/moved.conf"),
		v4Simple("rename a directory", func(f *FS, ino func(string) volume.Ino) error { return f.Rename(ino("var"), "log", ino("opt"), "log") },
			"mv /var/log /opt/log"),
		v4Simple("rename over a file", func(f *FS, ino func(string) volume.Ino) error {
			return f.Rename(ino("etc"), "motd", ino("opt"), "app.bin")
		}, "mv /etc/motd /opt/app.bin"),
		v4Simple("unlink", func(f *FS, ino func(string) volume.Ino) error { return f.Unlink(ino("etc"), "hostname.hard") },
			"rm /etc/hostname.hard"),
		v4Simple("mkdir and rmdir", func(f *FS, ino func(string) volume.Ino) error {
			if _, e := f.Mkdir(ino("opt"), "gone", 0o755); e != nil {
				return e
			}
			return f.Rmdir(ino("opt"), "gone")
		}, "mkdir /opt/gone\nrmdir /opt/gone"),
		v4Many("etc", "converted-", 30),        // short form to block
		v4Many("usr/share/many", "more-", 120), // block to leaf
		v4Many("usr/lib/lots", "grown-", 400),  // leaf to node
		v4Simple("unlink in a node directory", func(f *FS, ino func(string) volume.Ino) error {
			for i := 0; i < 700; i += 3 {
				if e := f.Unlink(ino("usr/bin"), fmt.Sprintf("program-%04d", i)); e != nil {
					return e
				}
			}
			return nil
		}, func() string {
			var b strings.Builder
			for i := 0; i < 700; i += 3 {
				fmt.Fprintf(&b, "rm /usr/bin/program-%04d\n", i)
			}
			return strings.TrimSuffix(b.String(), "\n")
		}()),
		v4Simple("chmod", func(f *FS, ino func(string) volume.Ino) error { return f.SetMode(ino("etc/hostname"), 0o600) },
			"chmod 0600 /etc/hostname"),
		v4Simple("chown", func(f *FS, ino func(string) volume.Ino) error { return f.SetOwner(ino("opt/agent.bin"), 1000, 1001) },
			"chown 1000 1001 /opt/agent.bin"),
		v4Simple("xattr", func(f *FS, ino func(string) volume.Ino) error {
			return f.SetXattr(ino("etc/hostname"), "user.offvm", []byte("patched"))
		}, "setxattr user.offvm patched 7 /etc/hostname"),
		v4Xattr("opt/app.bin", "user.leaf", 1000),   // an attribute leaf
		v4Xattr("opt/app.bin", "user.remote", 5000), // a remote value
		v4Xattrs("var/small", 60),                   // a node over leaves
		v4Simple("times", func(f *FS, ino func(string) volume.Ino) error {
			return f.SetTimes(ino("etc/hostname"), &v4Mtime, &v4Mtime)
		}, fmt.Sprintf("utimens /etc/hostname %d 0 %d 0", v4Mtime.Unix(), v4Mtime.Unix())),
	}
	return ops
}

// runV4 applies ops through offvm to img.
func runV4(t *testing.T, img string, ops []v4Op) *FS {
	t.Helper()
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.ReadOnlyReason(); r != "" || f.Version() != 4 {
		t.Fatalf("v%d XFS opens read-only: %s", f.Version(), r)
	}
	ino := func(p string) volume.Ino { return lookupPath(t, f, p).Ino }
	for _, op := range ops {
		if err := op.offvm(f, ino); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
	}
	return f
}

// fishScript is ops as one guestfish script; data goes through files.
func fishScript(t *testing.T, ops []v4Op) string {
	dir := t.TempDir()
	n := 0
	local := func(b []byte) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("data-%d", n))
		os.WriteFile(p, b, 0o644)
		return p
	}
	var b strings.Builder
	for _, op := range ops {
		b.WriteString(op.fish(local) + "\n")
	}
	return b.String()
}

// fishView is the appliance kernel's view of each image: its tree
// packed by tar in the appliance, unpacked here with owners and
// xattrs; compared file by file as the host kernel's mounts are.
func fishView(t *testing.T, imgs ...string) []string {
	t.Helper()
	var script strings.Builder
	var dirs []string
	for i := range imgs {
		d := t.TempDir()
		tar := filepath.Join(d, "tree.tar")
		fmt.Fprintf(&script, "mount-options ro,nouuid /dev/sd%c /\ntar-out / %s numericowner:true xattrs:true\numount /\n", 'a'+i, tar)
		dirs = append(dirs, d)
	}
	guestfish(t, script.String(), imgs...)
	for i, d := range dirs {
		root := filepath.Join(d, "root")
		os.Mkdir(root, 0o755)
		// tmpfs holds what ext4 does not: many and large xattrs on one file
		testutil.Run(t, "mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", root)
		t.Cleanup(func() { exec.Command("umount", root).Run() })
		// tar warns and goes on when an xattr does not fit: fail on any word
		out, err := exec.Command("tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", filepath.Join(d, "tree.tar"), "-C", root).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("unpacking the appliance's tar: %v\n%s", err, out)
		}
		dirs[i] = root
	}
	return dirs
}

// ownersTimes is each file's owner, group and mode bits, and for the
// files a step set the time of, the mtime.
func ownersTimes(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		out[rel] = fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, st.Mode)
		if rel == "etc/hostname" {
			out[rel] += " " + fi.ModTime().UTC().String()
		}
		return nil
	})
	return out
}

// TestV4WriteAgainstKernel: the same workload through offvm and, on a
// copy, through the kernel in libguestfs' appliance; xfs_repair -n is
// clean and the kernel shows the same tree, bytes, owners and modes.
func TestV4WriteAgainstKernel(t *testing.T) {
	if why := guestfishV4(); why != "" {
		t.Skip(why + "; v4 writes are checked by TestV4WriteXfsDB")
	}
	for _, ftype := range []string{"1", "0"} {
		t.Run("ftype="+ftype, func(t *testing.T) {
			img := v4Image(t, true, "-n", "ftype="+ftype)
			ref := copyFile(t, img)
			if in := v4Format(t, img, "var/frag"); in != "btree" {
				t.Fatalf("var/frag in format %s, not a B+tree", in)
			}
			ops := v4Workload()
			f := runV4(t, img, ops)
			if _, err := f.WriteAt(lookupPath(t, f, "var/prealloc").Ino, []byte("unwritten"), 0); !errors.Is(err, syscall.EOPNOTSUPP) {
				t.Errorf("write into unwritten blocks: %v, want EOPNOTSUPP", err)
			}
			v4Forms(t, img)
			guestfish(t, "mount /dev/sda /\n"+fishScript(t, ops)+"umount-all\n", ref)
			repairClean(t, img)
			repairClean(t, ref)
			views := fishView(t, ref, img)
			kernel := testutil.KernelTree(t, views[0])
			if len(kernel) < 1300 || len(kernel["opt/app.bin"].Xattrs) != 2 || len(kernel["var/small"].Xattrs) != 60 {
				t.Fatalf("the appliance's tar shows %d files, xattrs %v", len(kernel), kernel["opt/app.bin"].Xattrs)
			}
			testutil.CompareTrees(t, kernel, testutil.KernelTree(t, views[1]))
			testutil.CompareTrees(t, testutil.KernelTree(t, views[1]), testutil.EngineTree(t, openImage(t, img), true))
			want, got := ownersTimes(t, views[0]), ownersTimes(t, views[1])
			for p, w := range want {
				if got[p] != w {
					t.Errorf("%s: kernel %s, offvm %s", p, w, got[p])
				}
			}
		})
	}
}

// v4Format is the data fork format of path p as xfs_db prints it.
func v4Format(t *testing.T, img, p string) string {
	t.Helper()
	out := testutil.Run(t, "xfs_db", "-r", "-c", "path /"+p, "-c", "p core.format", img)
	f := strings.Fields(out)
	return strings.Trim(f[len(f)-1], "()")
}

// v4Forms checks that the workload took the directories through every
// form: xfs_db's formats and the blocks above the leaf offset.
func v4Forms(t *testing.T, img string) {
	t.Helper()
	for p, want := range map[string]string{"etc": "extents", "usr/share/many": "extents", "usr/lib/lots": "extents", "opt": "local"} {
		if got := v4Format(t, img, p); got != want {
			t.Errorf("%s: format %s, want %s", p, got, want)
		}
	}
	f := openImage(t, img)
	for p, want := range map[string]int{"etc": 0, "usr/share/many": 1, "usr/lib/lots": 2} {
		in, err := f.inode(uint64(lookupPath(t, f, p).Ino))
		if err != nil {
			t.Fatal(err)
		}
		above := 0 // 0: block form; 1: one leaf; more: a node and leaves
		for _, e := range in.extents {
			if e.off*uint64(f.sb.blockSize) >= leafOffset && e.off*uint64(f.sb.blockSize) < freeOffset {
				above += int(e.count)
			}
		}
		if min(above, 2) != want {
			t.Errorf("%s: %d blocks in the leaf space, want form %d", p, above, want)
		}
	}
}

// xfsDBFile reads file p's bytes through xfs_db: the block map, then
// each mapped block printed in hex; holes read as zeros.
func xfsDBFile(t *testing.T, img, p string, size int64) []byte {
	t.Helper()
	out := testutil.Run(t, "xfs_db", "-r", "-c", "path /"+p, "-c", "bmap -d", img)
	bs, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(testutil.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p blocksize", img), "blocksize =")), 10, 64)
	if err != nil {
		t.Fatalf("xfs_db blocksize: %v", err)
	}
	data := make([]byte, (size+bs-1)/bs*bs)
	args := []string{"-r", "-c", "path /" + p}
	var blocks []int64
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var off, start, count int64
		var ag, agb, flag int
		if l == "" {
			continue
		}
		if _, err := fmt.Sscanf(l, "data offset %d startblock %d (%d/%d) count %d flag %d", &off, &start, &ag, &agb, &count, &flag); err != nil {
			t.Fatalf("xfs_db bmap of %s: %q: %v", p, l, err)
		}
		for i := int64(0); i < count && (off+i)*bs < size; i++ {
			if flag == 0 {
				blocks = append(blocks, off+i)
				args = append(args, "-c", fmt.Sprintf("dblock %d", off+i), "-c", "p")
			}
		}
	}
	if len(blocks) == 0 {
		return data[:size]
	}
	dump := testutil.Run(t, "xfs_db", append(args, img)...)
	bi := -1
	for _, l := range strings.Split(dump, "\n") { // "fe0: 4fc0292b 67baac3b ...": 32 bytes a line
		hex, words, ok := strings.Cut(l, ":")
		at, err := strconv.ParseInt(hex, 16, 64)
		if !ok || err != nil {
			continue
		}
		if at == 0 {
			bi++
		}
		if bi >= len(blocks) {
			t.Fatalf("xfs_db printed more blocks of %s than it maps", p)
		}
		pos := blocks[bi]*bs + at
		for _, w := range strings.Fields(words) {
			v, err := strconv.ParseUint(w, 16, 32)
			if err != nil || len(w) != 8 {
				t.Fatalf("xfs_db dblock of %s: %q", p, l)
			}
			if pos+4 <= int64(len(data)) {
				binary.BigEndian.PutUint32(data[pos:], uint32(v))
			}
			pos += 4
		}
	}
	if bi+1 != len(blocks) {
		t.Fatalf("xfs_db printed %d blocks of %s, mapped %d", bi+1, p, len(blocks))
	}
	return data[:size]
}

// xfsDBNames is directory p's names as xfs_db's ls lists them.
func xfsDBNames(t *testing.T, img, p string) []string {
	out := testutil.Run(t, "xfs_db", "-r", "-c", "path /"+strings.TrimPrefix(p, "."), "-c", "ls", img)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 7 || f[len(f)-1] != "(good)" {
			t.Fatalf("xfs_db ls %s: %q", p, l)
		}
		if n := strings.Join(f[5:len(f)-1], " "); n != "." && n != ".." {
			names = append(names, n)
		}
	}
	return names
}

// TestV4WriteXfsDB: the workload through offvm on a v4 file system
// mkfs.xfs filled (no kernel needed); xfs_repair -n is clean, and
// xfs_db lists every directory's names and reads every changed file's
// bytes as offvm's reader does, and as the workload says they must be.
func TestV4WriteXfsDB(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		forms bool // the directory forms v4Forms checks are reached
	}{
		{"ftype=1", []string{"-n", "ftype=1"}, true},
		{"ftype=0", []string{"-n", "ftype=0"}, true},
		{"lazy-count=0", []string{"-l", "lazy-count=0"}, true},
		{"1k blocks, 8k directory blocks, 512-byte inodes", []string{"-b", "size=1024", "-n", "size=8192", "-i", "size=512"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := v4Image(t, false, c.args...)
			ops := v4Workload()
			runV4(t, img, ops)
			repairClean(t, img)
			if c.forms {
				v4Forms(t, img)
			}
			f := openImage(t, img)
			tree := testutil.EngineTree(t, f, false)
			dirs := 0
			for p, n := range tree {
				switch {
				case n.Mode.IsDir():
					dirs++
					ents, err := f.ReadDir(lookupPath(t, f, strings.TrimPrefix(p, ".")).Ino)
					if err != nil {
						t.Fatal(err)
					}
					var mine []string
					for _, e := range ents {
						mine = append(mine, e.Name)
					}
					got := xfsDBNames(t, img, p)
					slices.Sort(got)
					slices.Sort(mine)
					if !slices.Equal(got, mine) {
						t.Errorf("%s: xfs_db lists %d names, offvm %d", p, len(got), len(mine))
					}
				case n.Mode.IsRegular() && n.Size > 0 && n.Size < 400000:
					if b := xfsDBFile(t, img, p, n.Size); sha256.Sum256(b) != n.Sum {
						t.Errorf("%s: xfs_db reads other bytes than offvm", p)
					}
				}
			}
			if dirs < 8 {
				t.Fatalf("only %d directories walked", dirs)
			}
			want := map[string][]byte{"etc/hostname": []byte("guest-patched.example\n"), "etc/new.d/moved.conf": pattern(5000, 11),
				"opt/agent.hard": pattern(300000, 12)}
			for p, b := range want {
				if got := xfsDBFile(t, img, p, int64(len(b))); !bytes.Equal(got, b) {
					t.Errorf("%s: xfs_db reads %q..., want %q...", p, got[:min(20, len(got))], b[:20])
				}
			}
		})
	}
}

// v4FailSkip are the failOps v4 does not take: var/frag's B+tree,
// which mkfs -p does not make.
var v4FailSkip = map[string]bool{
	"append to a B+tree-mapped file": true, "truncate a B+tree-mapped file to an extent list": true,
	"unlink a B+tree-mapped file": true,
}

// TestV4WriteFailure fails the writes of each operation in turn on a v4
// file system, as TestWriteFailure does on v5: EIO, xfs_repair -n
// clean, the tree as before.
func TestV4WriteFailure(t *testing.T) {
	pristine := v4Image(t, false, "-n", "ftype=0")
	want := testutil.EngineTree(t, openImage(t, pristine), true)
	n := 0
	for _, op := range failOps {
		if !v4FailSkip[op.name] {
			failEachWrite(t, pristine, want, op.name, op.do)
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d operations failed", n)
	}
}

// TestV4WriteConcurrent: writers, a creator and readers at once on v4
// (run under -race), as TestWriteConcurrent on v5.
func TestV4WriteConcurrent(t *testing.T) {
	writeConcurrent(t, func(t *testing.T) string { return v4Image(t, false, "-n", "ftype=0") })
}
