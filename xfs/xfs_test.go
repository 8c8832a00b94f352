package xfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

func openImage(t *testing.T, p string) *FS {
	t.Helper()
	f, err := Open(testutil.OpenDevice(t, p, false))
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	return f
}

// populate makes what a guest's root holds, in every shape XFS stores:
// directories from short-form to node form, fragmented (B+tree-mapped),
// sparse, preallocated and reflinked files, short and long symlinks,
// small, many and large (remote) xattrs, hard links, fifos.
func populate(t *testing.T, root string, xattrs bool) {
	t.Helper()
	w := func(p string, b []byte) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("etc/os-release", []byte("NAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\nID=\"rocky\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n"))
	w("etc/hostname", []byte("rocky9\n"))
	for _, n := range []int{3, 40, 400, 4000} {
		for i := 0; i < n; i++ {
			w(fmt.Sprintf("d%d/entry-with-a-longish-name-%05d", n, i), []byte(fmt.Sprint(i)))
		}
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*131 + i>>12)
	}
	w("usr/lib/big.so", big)
	// fragmented: every other block written, hundreds of extents
	fr, err := os.Create(filepath.Join(root, "var/frag"))
	if err != nil {
		os.MkdirAll(filepath.Join(root, "var"), 0o755)
		fr, _ = os.Create(filepath.Join(root, "var/frag"))
	}
	for i := 0; i < 600; i++ {
		fr.WriteAt(bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 2048), int64(i)*8192)
	}
	fr.Close()
	if xattrs { // mkfs.xfs 6.1 -p overwrites AG headers with a large hole's zeros
		sp, _ := os.Create(filepath.Join(root, "var/sparse"))
		sp.WriteAt([]byte("start"), 0)
		sp.WriteAt([]byte("middle"), 300<<20)
		sp.Truncate(1 << 30)
		sp.Close()
	}
	exec.Command("fallocate", "-l", "1M", filepath.Join(root, "var/prealloc")).Run()
	os.Symlink("/etc/os-release", filepath.Join(root, "etc/short-link"))
	os.Symlink(strings.Repeat("long/target/", 80), filepath.Join(root, "etc/long-link"))
	os.Link(filepath.Join(root, "etc/hostname"), filepath.Join(root, "etc/hostname.hard"))
	syscall.Mkfifo(filepath.Join(root, "var/fifo"), 0o600)
	os.Chmod(filepath.Join(root, "usr/lib/big.so"), 0o4755)
	if xattrs {
		exec.Command("cp", "--reflink=always", filepath.Join(root, "usr/lib/big.so"), filepath.Join(root, "usr/lib/big-reflink.so")).Run()
		set := func(p, n string, v []byte) {
			if err := syscall.Setxattr(filepath.Join(root, p), n, v, 0); err != nil {
				t.Fatalf("setxattr %s %s: %v", p, n, err)
			}
		}
		set("etc/os-release", "user.small", []byte("hello"))
		set("etc/os-release", "security.selinux", []byte("system_u:object_r:etc_t:s0\x00"))
		set("etc/os-release", "trusted.offvm", []byte("t"))
		for i := 0; i < 60; i++ {
			set("etc/hostname", fmt.Sprintf("user.many-%03d", i), bytes.Repeat([]byte{byte(i)}, 40+i))
		}
		set("usr/lib/big.so", "user.large", bytes.Repeat([]byte("0123456789abcdef"), 2000))
	}
}

// mkfsMount makes an XFS with args, mounts it with the kernel, fills
// it, unmounts, and returns the image and the tree the kernel showed.
func mkfsMount(t *testing.T, args ...string) (string, map[string]testutil.Node) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	testutil.Run(t, "truncate", "-s", "400M", img)
	testutil.Run(t, "mkfs.xfs", append(append([]string{"-q", "-f"}, args...), img)...)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testutil.Run(t, "mount", "-o", "loop", img, mnt)
	populate(t, mnt, true)
	testutil.Run(t, "umount", mnt)
	testutil.Run(t, "mount", "-o", "loop,ro", img, mnt)
	defer exec.Command("umount", mnt).Run()
	return img, testutil.KernelTree(t, mnt)
}

// TestAgainstKernel: the kernel's view of an XFS it wrote and offvm's
// view of the same bytes agree on every file: type, mode, size, links,
// content, symlink target and xattrs.
func TestAgainstKernel(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"v5 defaults", []string{"-m", "crc=1"}},
		{"v5 1k blocks 8k dirs", []string{"-m", "crc=1", "-b", "size=1024", "-n", "size=8192"}},
		{"v5 reflink rmap", []string{"-m", "crc=1,reflink=1,rmapbt=1", "-i", "size=1024"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, want := mkfsMount(t, tc.args...)
			f := openImage(t, img)
			testutil.CompareTrees(t, want, testutil.EngineTree(t, f, true))
			shapes(t, f)
			if d := f.LogDirty(); d != "" {
				t.Errorf("cleanly unmounted file system: %s", d)
			}
			var wg sync.WaitGroup // parallel readers see the same tree
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got := testutil.EngineTree(t, f, i%2 == 0); len(got) != len(want) {
						t.Errorf("reader saw %d files, want %d", len(got), len(want))
					}
				}()
			}
			wg.Wait()
			if out, err := exec.Command("xfs_repair", "-n", "-f", img).CombinedOutput(); err != nil {
				t.Fatalf("xfs_repair -n on the untouched image: %v\n%s", err, out)
			}
		})
	}
}

// TestV4Protofile: a v4 file system (which this kernel no longer
// mounts) filled by mkfs.xfs -p from a protofile; offvm shows the source
// tree's files, links and bytes.
func TestV4Protofile(t *testing.T) {
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	populate(t, src, false)
	want := testutil.KernelTree(t, src)
	proto := protofile(t, src)
	img := filepath.Join(dir, "v4.img")
	testutil.Run(t, "truncate", "-s", "400M", img)
	testutil.Run(t, "mkfs.xfs", "-q", "-f", "-m", "crc=0", "-n", "ftype=1", "-p", proto, img)
	if out, err := exec.Command("xfs_repair", "-n", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("xfs_repair -n on mkfs's image: %v\n%s", err, out)
	}
	f := openImage(t, img)
	if d := f.LogDirty(); d != "" {
		t.Errorf("mkfs's file system: %s", d)
	}
	got := testutil.EngineTree(t, f, false)
	for k, n := range want { // a protofile keeps neither hard links nor holes' allocation
		n.Nlink, n.Xattrs = got[k].Nlink, map[string]string{}
		want[k] = n
	}
	testutil.CompareTrees(t, want, got)
}

// protofile writes mkfs.xfs's protofile for the tree at src.
func protofile(t *testing.T, src string) string {
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			fi, _ := os.Lstat(p)
			perm := fmt.Sprintf("%03o", fi.Mode().Perm())
			ind := strings.Repeat(" ", depth)
			switch {
			case fi.Mode()&os.ModeSetuid != 0:
				fmt.Fprintf(&b, "%s%s -u-%s 0 0 %s\n", ind, e.Name(), perm, p)
			case fi.Mode().IsRegular():
				fmt.Fprintf(&b, "%s%s ---%s 0 0 %s\n", ind, e.Name(), perm, p)
			case fi.IsDir():
				fmt.Fprintf(&b, "%s%s d--%s 0 0\n", ind, e.Name(), perm)
				walk(p, depth+1)
				fmt.Fprintf(&b, "%s$\n", ind)
			case fi.Mode()&os.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				fmt.Fprintf(&b, "%s%s l--%s 0 0 %s\n", ind, e.Name(), perm, l)
			case fi.Mode()&os.ModeNamedPipe != 0:
				fmt.Fprintf(&b, "%s%s p--%s 0 0\n", ind, e.Name(), perm)
			}
		}
	}
	walk(src, 1)
	b.WriteString("$\n")
	p := filepath.Join(t.TempDir(), "proto")
	os.WriteFile(p, []byte(b.String()), 0o644)
	return p
}

// shapes checks that the test image holds the on-disk forms the test is
// about, so that a change of mkfs defaults cannot empty the test.
func shapes(t *testing.T, f *FS) {
	t.Helper()
	get := func(p string) *inode {
		ino := f.Root()
		for _, n := range strings.Split(p, "/") {
			a, err := f.Lookup(ino, n)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			ino = a.Ino
		}
		in, _ := f.inode(uint64(ino))
		return in
	}
	if in := get("var/frag"); in.format != fmtBtree {
		t.Errorf("var/frag in format %d, not a B+tree", in.format)
	}
	if in := get("d3"); in.format != fmtLocal {
		t.Errorf("d3 in format %d, not short-form", in.format)
	}
	if in := get("d4000"); len(in.extents) < 2 || in.extents[len(in.extents)-1].off < leafOffset/uint64(f.sb.blockSize) {
		t.Errorf("d4000 has no leaf/node blocks: %+v", in.extents)
	}
	if in := get("etc/hostname"); in.aformat != fmtExtents {
		t.Errorf("etc/hostname attributes in format %d, not leaf blocks", in.aformat)
	}
	if in := get("etc/long-link"); in.format != fmtExtents {
		t.Errorf("etc/long-link in format %d, not a remote symlink", in.format)
	}
}

// TestDirtyLog: after the kernel shuts an XFS down without a clean
// unmount (xfs_io's shutdown, as a crash leaves it), offvm says its log
// needs recovery, as xfs_repair -n does; a clean unmount reads clean.
func TestDirtyLog(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "xfs_io", "xfsprogs")
	img, _ := mkfsMount(t, "-m", "crc=1")
	if f := openImage(t, img); f.LogDirty() != "" {
		t.Fatalf("clean file system reads dirty: %s", f.LogDirty())
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	testutil.Run(t, "mount", "-o", "loop", img, mnt)
	for i := 0; i < 50; i++ {
		os.WriteFile(filepath.Join(mnt, fmt.Sprintf("new-%d", i)), []byte("x"), 0o644)
	}
	testutil.Run(t, "xfs_io", "-x", "-c", "shutdown -f", mnt)
	testutil.Run(t, "umount", mnt)
	out, err := exec.Command("xfs_repair", "-n", "-f", img).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "log") {
		t.Fatalf("xfs_repair -n does not see a dirty log (%v):\n%s", err, out)
	}
	f := openImage(t, img)
	if !strings.Contains(f.LogDirty(), "needs recovery") || !strings.Contains(f.ReadOnlyReason(), "needs recovery") {
		t.Fatalf("dirty log reads %q", f.LogDirty())
	}
}
