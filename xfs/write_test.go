package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
	"golang.org/x/sys/unix"
)

// pattern is n bytes that differ from block to block.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i>>10) ^ seed
	}
	return b
}

// writeImage makes a 400 MB v5 XFS (mkfs defaults: reflink, finobt,
// bigtime) holding the files the write tests change, through the kernel.
func writeImage(t *testing.T) string { return makeWriteImage(t, true) }

// makeWriteImage: without node, no node-form directory (700 names),
// which only the refusal checks need.
func makeWriteImage(t *testing.T, node bool) string {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	testutil.Run(t, "truncate", "-s", "400M", img)
	mkfs(t, img, "-m", "crc=1")
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	testutil.Run(t, "mount", "-o", "loop", img, mnt)
	files := map[string][]byte{
		"etc/hostname": []byte("rocky9\n"), "etc/motd": pattern(10000, 1),
		"opt/app.bin": pattern(1<<20, 2), "var/log/big": pattern(2<<20, 3), "var/small": pattern(100, 4),
	}
	for p, b := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(mnt, p)), 0o755)
		if err := os.WriteFile(filepath.Join(mnt, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fr, _ := os.Create(filepath.Join(mnt, "var/frag"))
	for i := 0; i < 600; i++ {
		fr.WriteAt(bytes.Repeat([]byte{byte(i)}, 4096), int64(i)*8192)
	}
	fr.Close()
	testutil.Run(t, "fallocate", "-l", "1M", filepath.Join(mnt, "var/prealloc"))
	os.WriteFile(filepath.Join(mnt, "opt/shared.bin"), pattern(100000, 10), 0o644)
	testutil.Run(t, "cp", "--reflink=always", filepath.Join(mnt, "opt/shared.bin"), filepath.Join(mnt, "opt/shared.copy"))
	os.Link(filepath.Join(mnt, "etc/hostname"), filepath.Join(mnt, "etc/hostname.hard"))
	for i := 0; i < 60; i++ { // a block-form directory
		os.MkdirAll(filepath.Join(mnt, "usr/share/many"), 0o755)
		os.WriteFile(filepath.Join(mnt, fmt.Sprintf("usr/share/many/file-%03d", i)), nil, 0o644)
	}
	for i := 0; node && i < 700; i++ { // a node-form directory
		os.MkdirAll(filepath.Join(mnt, "usr/bin"), 0o755)
		os.WriteFile(filepath.Join(mnt, fmt.Sprintf("usr/bin/program-%04d", i)), nil, 0o755)
	}
	for i := 0; i < 250; i++ { // a leaf-form directory
		os.MkdirAll(filepath.Join(mnt, "usr/lib/lots"), 0o755)
		os.WriteFile(filepath.Join(mnt, fmt.Sprintf("usr/lib/lots/library-%04d.so", i)), nil, 0o644)
	}
	testutil.Run(t, "umount", mnt)
	return img
}

// step is one change, made through offvm or through the kernel.
type step struct {
	path string
	off  int64
	data []byte
	size int64 // >= 0: truncate to size instead of writing
	// refused: offvm must refuse with this errno and change nothing
	refused syscall.Errno
}

var workload = []step{
	{path: "etc/hostname", data: []byte("guest-patched.example\n"), size: -1},
	{path: "etc/motd", off: 10000, data: pattern(200000, 5), size: -1},   // append: new extents
	{path: "opt/app.bin", off: 123457, data: pattern(5000, 6), size: -1}, // in place
	{path: "opt/app.bin", size: 300001},                                  // frees the tail
	{path: "var/log/big", size: 0},
	{path: "var/small", size: 50000},
	{path: "var/small", off: 1 << 20, data: []byte("tail"), size: -1}, // a hole, then a block
	{path: "var/small", off: 60, data: pattern(9000, 7), size: -1},    // over the hole's start
	{path: "var/frag", off: 8192*3 + 100, data: []byte("frag-in-place"), size: -1},
	{path: "var/frag", off: 600 * 8192, data: []byte("past the end"), size: -1}, // a B+tree record more
	{path: "var/prealloc", off: 0, data: []byte("unwritten"), size: -1, refused: syscall.EOPNOTSUPP},
	{path: "opt/shared.copy", off: 0, data: []byte("shared"), size: -1},       // copy-on-write of a shared block
	{path: "opt/shared.bin", off: 50001, data: pattern(5000, 11), size: -1},   // two partial blocks
	{path: "opt/shared.copy", off: 90000, data: pattern(20000, 12), size: -1}, // shared blocks, then new ones
	{path: "opt/shared.copy", off: 4096, data: pattern(4096*3, 13), size: -1}, // whole blocks
	{path: "opt/shared.bin", size: 10},                                        // shared blocks lose an owner, the rest is freed
}

func lookupPath(t *testing.T, f volume.FS, p string) volume.Attr {
	t.Helper()
	a, err := volume.Resolve(f, p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return a
}

func (s step) offvm(f *FS, ino volume.Ino) error {
	if s.size >= 0 {
		return f.Truncate(ino, s.size)
	}
	_, err := f.WriteAt(ino, s.data, s.off)
	return err
}

func (s step) kernel(root string) error {
	p := filepath.Join(root, s.path)
	if s.size >= 0 {
		return os.Truncate(p, s.size)
	}
	fh, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = fh.WriteAt(s.data, s.off)
	return err
}

// kernelView mounts img read-only and returns its tree.
func kernelView(t *testing.T, img string) map[string]testutil.Node {
	t.Helper()
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop,ro", img, mnt)
	defer testutil.Run(t, "umount", mnt)
	return testutil.KernelTree(t, mnt)
}

func repairClean(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("xfs_repair", "-n", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("xfs_repair -n: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.img")
	testutil.Run(t, "cp", "--sparse=always", src, dst)
	return dst
}

// TestWriteAgainstKernel: the same workload through offvm and through
// the kernel on a copy; xfs_repair -n is clean after offvm's writes and
// the kernel's mount of both shows the same tree and bytes.
func TestWriteAgainstKernel(t *testing.T) {
	img := writeImage(t)
	ref := copyFile(t, img)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.ReadOnlyReason(); r != "" {
		t.Fatalf("fresh v5 XFS opens read-only: %s", r)
	}
	before, _ := f.StatFS()
	if in, _ := f.inode(uint64(lookupPath(t, f, "var/frag").Ino)); in.format != fmtBtree {
		t.Fatalf("var/frag in format %d, not a B+tree", in.format)
	}
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop", ref, mnt)
	for i, s := range workload {
		a := lookupPath(t, f, s.path)
		err := s.offvm(f, a.Ino)
		if s.refused != 0 {
			if !errors.Is(err, s.refused) {
				t.Errorf("step %d (%s): %v, want %v", i, s.path, err, s.refused)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.path, err)
		}
		if err := s.kernel(mnt); err != nil {
			t.Fatalf("kernel step %d: %v", i, err)
		}
	}
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := f.SetTimes(lookupPath(t, f, "etc/hostname").Ino, &mtime, &mtime); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "umount", mnt)
	after, _ := f.StatFS()
	if after.BlocksFree == before.BlocksFree {
		t.Errorf("free blocks unchanged (%d) after allocating and freeing", after.BlocksFree)
	}
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
	mnt2 := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop,ro", img, mnt2)
	fi, err := os.Stat(filepath.Join(mnt2, "etc/hostname"))
	testutil.Run(t, "umount", mnt2)
	if err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("kernel sees mtime %v (%v), want %v", fi.ModTime(), err, mtime)
	}
}

// failDev fails its n-th write once (a transient device error).
type failDev struct {
	*testutil.FileDevice
	mu     sync.Mutex
	n, at  int
	failed bool
}

func (d *failDev) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	if d.at > 0 {
		d.n++
	}
	fail := d.at > 0 && d.n == d.at
	d.failed = d.failed || fail
	d.mu.Unlock()
	if fail {
		// half of it lands, as a torn write would leave it
		d.FileDevice.WriteAt(p[:len(p)/2], off)
		return len(p) / 2, syscall.EIO
	}
	return d.FileDevice.WriteAt(p, off)
}

// failOps are operations of every write path, for TestWriteFailure.
var failOps = []failOp{
	{"append", func(t *testing.T, f *FS) error {
		_, err := f.WriteAt(lookupPath(t, f, "etc/motd").Ino, pattern(300000, 9), 10000)
		return err
	}},
	{"truncate", func(t *testing.T, f *FS) error { return f.Truncate(lookupPath(t, f, "opt/app.bin").Ino, 4097) }},
	{"overwrite", func(t *testing.T, f *FS) error {
		_, err := f.WriteAt(lookupPath(t, f, "opt/app.bin").Ino, pattern(70000, 8), 5000)
		return err
	}},
	{"create", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "etc").Ino, "new.conf", 0o644)
		return err
	}},
	{"unlink", func(t *testing.T, f *FS) error { return f.Unlink(lookupPath(t, f, "var").Ino, "small") }},
	{"unlink big", func(t *testing.T, f *FS) error { return f.Unlink(lookupPath(t, f, "var/log").Ino, "big") }},
	{"create in a block directory", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "usr/share/many").Ino, "new", 0o644)
		return err
	}},
	{"create converting a directory", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "var").Ino, "the-one-that-converts", 0o644)
		return err
	}},
	{"create in a leaf directory", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "usr/lib/lots").Ino, "new", 0o644)
		return err
	}},
	{"mkdir", func(t *testing.T, f *FS) error {
		_, err := f.Mkdir(lookupPath(t, f, "etc").Ino, "new.d", 0o755)
		return err
	}},
	{"symlink", func(t *testing.T, f *FS) error { _, err := f.Symlink(f.Root(), "l", "/etc/hostname"); return err }},
	{"create with a new inode chunk", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "etc").Ino, "first-of-a-chunk", 0o644)
		return err
	}},
	{"create making a block directory a leaf", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "usr/share/many").Ino, "converts-to-leaf", 0o644)
		return err
	}},
	{"create making a leaf directory a node", func(t *testing.T, f *FS) error {
		_, err := f.Create(lookupPath(t, f, "usr/lib/lots").Ino, "converts-to-node.so", 0o644)
		return err
	}},
	{"long symlink", func(t *testing.T, f *FS) error { _, err := f.Symlink(f.Root(), "l", longTarget); return err }},
	{"setxattr", func(t *testing.T, f *FS) error {
		return f.SetXattr(lookupPath(t, f, "etc/motd").Ino, "security.selinux", []byte("system_u:object_r:etc_t:s0\x00"))
	}},
	{"setxattr on a directory", func(t *testing.T, f *FS) error {
		return f.SetXattr(lookupPath(t, f, "etc").Ino, "user.x", pattern(200, 1))
	}},
	{"append to a B+tree-mapped file", func(t *testing.T, f *FS) error {
		_, err := f.WriteAt(lookupPath(t, f, "var/frag").Ino, []byte("more"), 601*8192)
		return err
	}},
	{"truncate a B+tree-mapped file to an extent list", func(t *testing.T, f *FS) error {
		return f.Truncate(lookupPath(t, f, "var/frag").Ino, 5*8192)
	}},
	{"unlink a B+tree-mapped file", func(t *testing.T, f *FS) error { return f.Unlink(lookupPath(t, f, "var").Ino, "frag") }},
	{"write making an extent B+tree", func(t *testing.T, f *FS) error {
		_, err := f.WriteAt(lookupPath(t, f, "var/small").Ino, []byte("x"), int64(2*(forkRoom(t, f, "var/small")+1))*4096)
		return err
	}},
	{"setxattr making an attribute leaf", func(t *testing.T, f *FS) error {
		return f.SetXattr(lookupPath(t, f, "etc/motd").Ino, "user.large", pattern(1000, 4))
	}},
	{"setxattr with a remote value", func(t *testing.T, f *FS) error {
		return f.SetXattr(lookupPath(t, f, "etc/motd").Ino, "user.remote", pattern(5000, 5))
	}},
	{"removexattr back to short form", func(t *testing.T, f *FS) error {
		return f.RemoveXattr(lookupPath(t, f, "etc/motd").Ino, "user.large")
	}},
	{"unlink a file with an attribute leaf", func(t *testing.T, f *FS) error { return f.Unlink(lookupPath(t, f, "var").Ino, "small") }},
	{"setxattr making an attribute node tree", func(t *testing.T, f *FS) error {
		return f.SetXattr(lookupPath(t, f, "etc/motd").Ino, "user.fill33", pattern(100, 33))
	}},
	{"removexattr from a node tree", func(t *testing.T, f *FS) error {
		return f.RemoveXattr(lookupPath(t, f, "etc/motd").Ino, "user.fill05")
	}},
	{"unlink a file with an attribute node tree", func(t *testing.T, f *FS) error {
		return f.Unlink(lookupPath(t, f, "var").Ino, "small")
	}},
	{"chmod", func(t *testing.T, f *FS) error { return f.SetMode(lookupPath(t, f, "etc/motd").Ino, 0o4711) }},
	{"chown", func(t *testing.T, f *FS) error { return f.SetOwner(lookupPath(t, f, "etc").Ino, 7, 8) }},
	{"rename dir", func(t *testing.T, f *FS) error {
		return f.Rename(lookupPath(t, f, "var").Ino, "log", lookupPath(t, f, "opt").Ino, "log")
	}},
	{"rename over", func(t *testing.T, f *FS) error {
		return f.Rename(lookupPath(t, f, "etc").Ino, "motd", lookupPath(t, f, "opt").Ino, "app.bin")
	}},
}

// oneInode are the operations that change one inode's core only: one
// write, failed whole or torn.
var oneInode = map[string]bool{"chmod": true, "chown": true, "setxattr": true, "setxattr on a directory": true}

// failPrep brings an image to the state an operation needs.
var failPrep = map[string]func(*testing.T, *FS, string) map[string]testutil.Node{
	"create converting a directory": fillVar,
	"write making an extent B+tree": fillExtents,
	"create with a new inode chunk": fillInodes,
	"removexattr back to short form": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return withXattr(t, f, img, "etc/motd")
	},
	"unlink a file with an attribute leaf": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return withXattr(t, f, img, "var/small")
	},
	"setxattr making an attribute node tree": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return withAttrs(t, f, img, "etc/motd", 33)
	},
	"removexattr from a node tree": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return withAttrs(t, f, img, "etc/motd", 40)
	},
	"unlink a file with an attribute node tree": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return withAttrs(t, f, img, "var/small", 40)
	},
	"create making a block directory a leaf": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return fillUntil(t, f, "usr/share/many", "converts-to-leaf")
	},
	"create making a leaf directory a node": func(t *testing.T, f *FS, img string) map[string]testutil.Node {
		return fillUntil(t, f, "usr/lib/lots", "converts-to-node.so")
	},
}

// fillInodes creates files until no existing inode chunk has a free
// inode, and returns the tree then.
func fillInodes(t *testing.T, f *FS, img string) map[string]testutil.Node {
	t.Helper()
	useFreeInodes(t, f)
	return testutil.EngineTree(t, openImage(t, img), true)
}

// useFreeInodes creates files until no inode chunk has a free inode.
func useFreeInodes(t *testing.T, f *FS) {
	t.Helper()
	var dir volume.Ino
	for i := 0; be.Uint64(f.w.sb[sbIfree:]) > 0; i++ {
		if i%60 == 0 { // block-form directories only
			a, err := f.Mkdir(f.Root(), fmt.Sprintf("fill%d", i), 0o755)
			if err != nil {
				t.Fatal(err)
			}
			dir = a.Ino
			continue
		}
		if _, err := f.Create(dir, fmt.Sprintf("f%03d", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// attrMagic is the magic of ino's attribute block 0, as xfs_db prints it.
func attrMagic(t *testing.T, img string, ino uint64) string {
	out := testutil.Run(t, "xfs_db", "-r", "-c", fmt.Sprintf("inode %d", ino), "-c", "ablock 0", "-c", "p hdr.info.hdr.magic", img)
	_, m, _ := strings.Cut(strings.TrimSpace(out), " = ")
	return m
}

// withAttrs gives p n attributes of 100 bytes: with 33 they fill one
// leaf, with more they need a node tree.
func withAttrs(t *testing.T, f *FS, img, p string, n int) map[string]testutil.Node {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := f.SetXattr(lookupPath(t, f, p).Ino, fmt.Sprintf("user.fill%02d", i), pattern(100, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	return testutil.EngineTree(t, openImage(t, img), true)
}

// withXattr gives p a 1,000-byte attribute (in a leaf block).
func withXattr(t *testing.T, f *FS, img, p string) map[string]testutil.Node {
	t.Helper()
	if err := f.SetXattr(lookupPath(t, f, p).Ino, "user.large", pattern(1000, 4)); err != nil {
		t.Fatal(err)
	}
	return testutil.EngineTree(t, openImage(t, img), true)
}

// fillVar creates files in the short-form var until one more name
// would make it a block, and returns the tree then.
func fillVar(t *testing.T, f *FS, img string) map[string]testutil.Node {
	var_ := lookupPath(t, f, "var").Ino
	for i := 0; ; i++ {
		in, _ := f.readInode(uint64(var_))
		// the next entry: 1+2 bytes, the name, ftype, a 4-byte number
		if in.size+3+int64(len("the-one-that-converts"))+1+4 > int64(len(in.dfork)) {
			break
		}
		if _, err := f.Create(var_, fmt.Sprintf("f%d", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return testutil.EngineTree(t, openImage(t, img), true)
}

// countWrites is how many device writes op makes on a copy of img.
func countWrites(t *testing.T, img, name string, op func(*testing.T, *FS) error) int {
	c := copyFile(t, img)
	d := &failDev{FileDevice: testutil.OpenDevice(t, c, true)}
	f, err := OpenWritable(d)
	if err != nil {
		t.Fatal(err)
	}
	if prep := failPrep[name]; prep != nil {
		prep(t, f, c)
	}
	d.at = 1 << 30
	if err := op(t, f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	os.Remove(c)
	return d.n
}

// nextFailure steps through the first three writes, the middle ones
// and the last three, then past the end (the run that succeeds).
func nextFailure(at, n int) int {
	switch {
	case at >= 3 && at < n/2:
		return n / 2
	case at == n/2 && at+1 < n-2:
		return n - 2
	}
	return at + 1
}

// TestWriteFailure fails writes of each operation in turn (the first
// three, the middle and the last three; half of the failed write landing): the operation returns EIO, xfs_repair -n stays
// clean and the tree reads as before, bytes included.
func TestWriteFailure(t *testing.T) {
	pristine := makeWriteImage(t, false)
	want := testutil.EngineTree(t, openImage(t, pristine), true)
	for _, op := range failOps {
		failEachWrite(t, pristine, want, op.name, op.do)
	}
}

type failOp struct {
	name string
	do   func(t *testing.T, f *FS) error
}

// failExact runs failEachWrite for each of ops on pristine, checking
// the image after each failure byte for byte (exactAfterFailure).
func failExact(t *testing.T, pristine string, ops []failOp) {
	for _, op := range ops {
		exactAfterFailure[op.name] = true
		failEachWrite(t, pristine, nil, op.name, op.do)
	}
}

// exactAfterFailure are the operations (all writing metadata only)
// whose failure must leave the image byte for byte as it was: checked
// by comparing it with a copy made before, which xfs_repair -n checks
// once, instead of a repair and a walk of the tree at each failure.
var exactAfterFailure = map[string]bool{}

// failEachWrite runs op on a copy of pristine (brought to its state by
// failPrep[name] first) with its writes failed in turn, checking after
// each failure that the copy is as before (want, or what prep left).
func failEachWrite(t *testing.T, pristine string, want map[string]testutil.Node, name string, do func(*testing.T, *FS) error) {
	// a failed operation leaves the image as it was (checked below),
	// so one copy serves every failure point of an operation
	img := copyFile(t, pristine)
	n := countWrites(t, pristine, name, do)
	var before string // the image after prep, for exactAfterFailure
	for at := 1; ; at = nextFailure(at, n) {
		d := &failDev{FileDevice: testutil.OpenDevice(t, img, true)}
		f, err := OpenWritable(d)
		if err != nil {
			t.Fatal(err)
		}
		if prep := failPrep[name]; prep != nil && at == 1 {
			want = prep(t, f, img)
		}
		if exactAfterFailure[name] && at == 1 {
			before = copyFile(t, img)
			repairClean(t, before)
		}
		d.at = at
		err = do(t, f)
		if !d.failed {
			if err != nil {
				t.Fatalf("%s: %v without a failure", name, err)
			}
			if at < 3 && !oneInode[name] {
				t.Fatalf("%s made only %d writes", name, at-1)
			}
			if name == "create converting a directory" {
				if in, _ := f.readInode(uint64(lookupPath(t, f, "var").Ino)); in.format != fmtExtents {
					t.Errorf("%s: var still in format %d", name, in.format)
				}
			}
			return
		}
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("%s, write %d failed: %v, want EIO", name, at, err)
		}
		if exactAfterFailure[name] {
			sameBytes(t, before, img)
			continue
		}
		repairClean(t, img)
		testutil.CompareTrees(t, want, testutil.EngineTree(t, openImage(t, img), true))
	}
}

// sameBytes fails unless files a and b hold the same bytes.
func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	pa, pb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(pa)) {
		na, ea := io.ReadFull(fa, pa)
		nb, _ := io.ReadFull(fb, pb)
		if na != nb || !bytes.Equal(pa[:na], pb[:nb]) {
			t.Fatalf("%s and %s differ in the MiB at %d", a, b, off)
		}
		if ea != nil {
			return
		}
	}
}

// TestNamesAgainstKernel: files, directories, links and renames in
// short-form directories through offvm and through the kernel on a copy; the
// kernel's mounts agree and xfs_repair -n is clean. What is not done
// (block-form directories, B+tree-mapped or reflinked files) is refused.
func TestNamesAgainstKernel(t *testing.T) {
	img := writeImage(t)
	ref := copyFile(t, img)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop", ref, mnt)
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	creates := []struct {
		dir, name string
		mode      os.FileMode
		data      []byte
	}{
		{"etc", "new.conf", 0o640, pattern(5000, 11)},
		{"", "README.offvm", 0o644, nil},
		{"opt", "agent.bin", 0o755, pattern(300000, 12)},
	}
	for _, c := range creates {
		a, err := f.Create(lookupPath(t, f, c.dir).Ino, c.name, c.mode)
		if err != nil {
			t.Fatalf("create %s/%s: %v", c.dir, c.name, err)
		}
		if len(c.data) > 0 {
			if _, err := f.WriteAt(a.Ino, c.data, 0); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(mnt, c.dir, c.name)
		if err := os.WriteFile(p, c.data, c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, c.mode)
	}
	if _, err := f.Create(lookupPath(t, f, "etc").Ino, "new.conf", 0o644); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second create: %v, want EEXIST", err)
	}
	for _, p := range []string{"var/small", "etc/motd", "etc/hostname.hard", "var/log/big"} {
		if err := f.Unlink(lookupPath(t, f, filepath.Dir(p)).Ino, filepath.Base(p)); err != nil {
			t.Fatalf("unlink %s: %v", p, err)
		}
		if err := os.Remove(filepath.Join(mnt, p)); err != nil {
			t.Fatal(err)
		}
	}
	ino := func(p string) volume.Ino { return lookupPath(t, f, p).Ino }
	form := func(p string) string { // which of the writer's paths a directory takes
		r, err := f.loadRaw(uint64(ino(p)))
		if err != nil {
			return err.Error()
		}
		d, err := f.loadSF(r)
		switch {
		case err != nil:
			return err.Error()
		case d.leaf != nil:
			return "leaf"
		case d.block != nil:
			return "block"
		}
		return "short"
	}
	for p, want := range map[string]string{"etc": "short", "usr/share/many": "block", "usr/lib/lots": "leaf", "usr/bin": "leaf"} {
		if got := form(p); !strings.Contains(got, want) {
			t.Errorf("%s: %s, want %s", p, got, want)
		}
	}
	ns := []struct {
		name   string
		offvm  func() error
		kernel func(k func(string) string) error
	}{
		{"mkdir", func() error { _, e := f.Mkdir(ino("etc"), "new.d", 0o750); return e },
			func(k func(string) string) error { os.Mkdir(k("etc/new.d"), 0); return os.Chmod(k("etc/new.d"), 0o750) }},
		{"symlink", func() error { _, e := f.Symlink(ino("etc"), "link", "/etc/new.d/moved.conf"); return e },
			func(k func(string) string) error { return os.Symlink("/etc/new.d/moved.conf", k("etc/link")) }},
		{"link", func() error { _, e := f.Link(ino("opt/agent.bin"), ino("opt"), "agent.hard"); return e },
			func(k func(string) string) error { return os.Link(k("opt/agent.bin"), k("opt/agent.hard")) }},
		{"rename into a subdirectory", func() error { return f.Rename(ino("etc"), "new.conf", ino("etc/new.d"), "moved.conf") },
			func(k func(string) string) error { return os.Rename(k("etc/new.conf"), k("etc/new.d/moved.conf")) }},
		{"rename a directory", func() error { return f.Rename(ino("var"), "log", ino("opt"), "log") },
			func(k func(string) string) error { return os.Rename(k("var/log"), k("opt/log")) }},
		{"rename over a file", func() error { return f.Rename(ino("etc"), "hostname", ino("opt"), "app.bin") },
			func(k func(string) string) error { return os.Rename(k("etc/hostname"), k("opt/app.bin")) }},
		{"mkdir d1", func() error { _, e := f.Mkdir(f.Root(), "d1", 0o755); return e },
			func(k func(string) string) error { os.Mkdir(k("d1"), 0); return os.Chmod(k("d1"), 0o755) }},
		{"mkdir d1/d2", func() error { _, e := f.Mkdir(ino("d1"), "d2", 0o755); return e },
			func(k func(string) string) error { os.Mkdir(k("d1/d2"), 0); return os.Chmod(k("d1/d2"), 0o755) }},
		{"mkdir d1/d3", func() error { _, e := f.Mkdir(ino("d1"), "d3", 0o700); return e },
			func(k func(string) string) error { os.Mkdir(k("d1/d3"), 0); return os.Chmod(k("d1/d3"), 0o700) }},
		{"rmdir", func() error { return f.Rmdir(ino("d1"), "d2") },
			func(k func(string) string) error { return os.Remove(k("d1/d2")) }},
		{"create in a block directory", func() error { _, e := f.Create(ino("usr/share/many"), "new-file", 0o644); return e },
			func(k func(string) string) error { return os.WriteFile(k("usr/share/many/new-file"), nil, 0o644) }},
		{"unlink in a block directory", func() error { return f.Unlink(ino("usr/share/many"), "file-007") },
			func(k func(string) string) error { return os.Remove(k("usr/share/many/file-007")) }},
		{"rename out of a block directory", func() error { return f.Rename(ino("usr/share/many"), "file-010", ino("etc"), "file-010") },
			func(k func(string) string) error { return os.Rename(k("usr/share/many/file-010"), k("etc/file-010")) }},
		{"mkdir in a block directory", func() error { _, e := f.Mkdir(ino("usr/share/many"), "sub", 0o755); return e },
			func(k func(string) string) error {
				os.Mkdir(k("usr/share/many/sub"), 0)
				return os.Chmod(k("usr/share/many/sub"), 0o755)
			}},
		{"move a directory into a block directory", func() error { return f.Rename(ino("d1"), "d3", ino("usr/share/many/sub"), "d3") },
			func(k func(string) string) error { return os.Rename(k("d1/d3"), k("usr/share/many/sub/d3")) }},
		{"grow a short-form directory into a block", func() error {
			for i := 0; i < 30; i++ {
				if _, e := f.Create(ino("var"), fmt.Sprintf("converted-file-%02d", i), 0o644); e != nil {
					return e
				}
			}
			return f.Unlink(ino("var"), "converted-file-03")
		}, func(k func(string) string) error {
			for i := 0; i < 30; i++ {
				os.WriteFile(k(fmt.Sprintf("var/converted-file-%02d", i)), nil, 0o644)
			}
			return os.Remove(k("var/converted-file-03"))
		}},
		{"create in a leaf directory", func() error { _, e := f.Create(ino("usr/lib/lots"), "libnew.so.1", 0o644); return e },
			func(k func(string) string) error { return os.WriteFile(k("usr/lib/lots/libnew.so.1"), nil, 0o644) }},
		{"unlink in a leaf directory", func() error { return f.Unlink(ino("usr/lib/lots"), "library-0123.so") },
			func(k func(string) string) error { return os.Remove(k("usr/lib/lots/library-0123.so")) }},
		{"rename within a leaf directory", func() error {
			return f.Rename(ino("usr/lib/lots"), "library-0200.so", ino("usr/lib/lots"), "library-0399.so")
		}, func(k func(string) string) error {
			return os.Rename(k("usr/lib/lots/library-0200.so"), k("usr/lib/lots/library-0399.so"))
		}},
		{"mkdir in a leaf directory", func() error { _, e := f.Mkdir(ino("usr/lib/lots"), "python3", 0o755); return e },
			func(k func(string) string) error {
				os.Mkdir(k("usr/lib/lots/python3"), 0)
				return os.Chmod(k("usr/lib/lots/python3"), 0o755)
			}},
		{"rename a directory again", func() error { return f.Rename(ino("opt"), "log", ino("d1"), "logs") },
			func(k func(string) string) error { return os.Rename(k("opt/log"), k("d1/logs")) }},
		{"create in a node directory", func() error { _, e := f.Create(ino("usr/bin"), "new-tool", 0o755); return e },
			func(k func(string) string) error { return os.WriteFile(k("usr/bin/new-tool"), nil, 0o755) }},
		{"unlink in a node directory", func() error { return f.Unlink(ino("usr/bin"), "program-0333") },
			func(k func(string) string) error { return os.Remove(k("usr/bin/program-0333")) }},
		{"grow a block directory into a leaf", func() error { return grow(f, ino("usr/share/many"), "grown-", 80) },
			func(k func(string) string) error { return growKernel(k("usr/share/many"), "grown-", 80) }},
		{"grow a leaf directory into a node", func() error { return grow(f, ino("usr/lib/lots"), "libgrown-", 400) },
			func(k func(string) string) error { return growKernel(k("usr/lib/lots"), "libgrown-", 400) }},
		{"grow a node directory", func() error { return grow(f, ino("usr/bin"), "tool-with-a-longer-name-", 900) },
			func(k func(string) string) error { return growKernel(k("usr/bin"), "tool-with-a-longer-name-", 900) }},
		{"shrink a node directory", func() error {
			for i := 0; i < 700; i += 2 {
				if e := f.Unlink(ino("usr/bin"), fmt.Sprintf("program-%04d", i)); e != nil {
					return e
				}
			}
			return nil
		}, func(k func(string) string) error {
			for i := 0; i < 700; i += 2 {
				os.Remove(k(fmt.Sprintf("usr/bin/program-%04d", i)))
			}
			return nil
		}},
		{"rmdir an emptied block directory", func() error {
			if _, e := f.Mkdir(f.Root(), "emptied", 0o755); e != nil {
				return e
			}
			d := ino("emptied")
			if e := grow(f, d, "x", 40); e != nil {
				return e
			}
			for i := 0; i < 40; i++ {
				if e := f.Unlink(d, fmt.Sprintf("x%04d", i)); e != nil {
					return e
				}
			}
			return f.Rmdir(f.Root(), "emptied")
		}, func(k func(string) string) error { return nil }},
		{"long symlink", func() error { _, e := f.Symlink(ino("etc"), "long", longTarget); return e },
			func(k func(string) string) error { return os.Symlink(longTarget, k("etc/long")) }},
		{"unlink a long symlink", func() error {
			if _, e := f.Symlink(f.Root(), "gone", longTarget[:500]); e != nil {
				return e
			}
			return f.Unlink(f.Root(), "gone")
		}, func(k func(string) string) error { return nil }},
		// chown before chmod, as dpkg and rpm do: chown clears setuid
		{"chown a file", func() error { return f.SetOwner(ino("opt/agent.bin"), 1000, 1001) },
			func(k func(string) string) error { return os.Chown(k("opt/agent.bin"), 1000, 1001) }},
		{"chmod setuid", func() error { return f.SetMode(ino("opt/agent.bin"), 0o755|os.ModeSetuid) },
			func(k func(string) string) error { return os.Chmod(k("opt/agent.bin"), 0o755|os.ModeSetuid) }},
		{"chown a directory, group only", func() error { return f.SetOwner(ino("etc/new.d"), -1, 48) },
			func(k func(string) string) error { return os.Chown(k("etc/new.d"), -1, 48) }},
		{"chmod sticky", func() error { return f.SetMode(ino("etc/new.d"), 0o777|os.ModeSticky) },
			func(k func(string) string) error { return os.Chmod(k("etc/new.d"), 0o777|os.ModeSticky) }},
		{"chown a 32-bit uid", func() error { return f.SetOwner(ino("etc/long"), 70000, 70001) },
			func(k func(string) string) error { return os.Lchown(k("etc/long"), 70000, 70001) }},
		{"unlink a reflinked file", func() error { return f.Unlink(ino("opt"), "shared.copy") },
			func(k func(string) string) error { return os.Remove(k("opt/shared.copy")) }},
	}
	for _, c := range ns {
		if err := c.offvm(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := c.kernel(func(p string) string { return filepath.Join(mnt, p) }); err != nil {
			t.Fatalf("kernel %s: %v", c.name, err)
		}
	}
	testutil.Run(t, "umount", mnt)
	if in, _ := f.inode(uint64(ino("var"))); in.format != fmtExtents {
		t.Errorf("var in format %d after 30 creates, not a block", in.format)
	}
	for p, want := range map[string]int{"usr/share/many": 1, "usr/lib/lots": 3, "usr/bin": 4} {
		r, _ := f.loadRaw(uint64(ino(p)))
		d, err := f.loadSF(r)
		if err != nil || d.leaf == nil || len(d.leaf.above) < want {
			t.Errorf("%s: %v; want a leaf or node directory with %d blocks above the data", p, err, want)
		}
	}
	if in, _ := f.inode(uint64(ino("etc/long"))); in.format != fmtExtents || in.nblocks != 1 {
		t.Errorf("etc/long in format %d with %d blocks, not a remote symlink", in.format, in.nblocks)
	}
	refusals := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"directory", f.Unlink(f.Root(), "etc"), syscall.EISDIR},
		{"absent", f.Unlink(f.Root(), "nope"), syscall.ENOENT},
		{"slash", func() error { _, e := f.Create(f.Root(), "a/b", 0); return e }(), syscall.EINVAL},
		{"rmdir not empty", f.Rmdir(f.Root(), "d1"), syscall.ENOTEMPTY},
		{"rmdir file", f.Rmdir(lookupPath(t, f, "opt").Ino, "app.bin"), syscall.ENOTDIR},
		{"dir into itself", f.Rename(f.Root(), "d1", lookupPath(t, f, "d1/logs").Ino, "x"), syscall.EINVAL},
		{"dir over file", f.Rename(f.Root(), "d1", lookupPath(t, f, "opt").Ino, "app.bin"), syscall.ENOTDIR},
		{"symlink too long", func() error { _, e := f.Symlink(f.Root(), "l", strings.Repeat("x", 1025)); return e }(), syscall.EINVAL},
	}
	for _, c := range refusals {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
	compareOwners(t, ref, img)
}

// grow creates n empty files named prefix0000... in dir.
func grow(f *FS, dir volume.Ino, prefix string, n int) error {
	for i := 0; i < n; i++ {
		if _, err := f.Create(dir, fmt.Sprintf("%s%04d", prefix, i), 0o644); err != nil {
			return fmt.Errorf("%s%04d: %w", prefix, i, err)
		}
	}
	return nil
}

func growKernel(dir, prefix string, n int) error {
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s%04d", prefix, i)), nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// longTarget needs a block of its own (more than the inode's 336 bytes).
var longTarget = "/usr/lib/" + strings.Repeat("very-long-directory-name/", 30) + "target"

// kernelOwners is every path's uid:gid as the kernel's read-only mount
// of img shows it.
func kernelOwners(t *testing.T, img string) map[string]string {
	t.Helper()
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop,ro", img, mnt)
	defer testutil.Run(t, "umount", mnt)
	out := map[string]string{}
	filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			rel, _ := filepath.Rel(mnt, p)
			out[rel] = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
		}
		return nil
	})
	return out
}

// compareOwners: the kernel shows the same owners on both images, and
// some are not root (a check that cannot pass by accident).
func compareOwners(t *testing.T, ref, img string) {
	t.Helper()
	want, got := kernelOwners(t, ref), kernelOwners(t, img)
	nonRoot := 0
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: owner %q, kernel made %q", p, got[p], w)
		}
		if w != "0:0" {
			nonRoot++
		}
	}
	if len(got) != len(want) || nonRoot == 0 {
		t.Errorf("%d paths vs %d, %d not owned by root", len(got), len(want), nonRoot)
	}
}

// TestWriteConcurrent: readers walk the tree while writers append to
// and truncate two files; afterwards both files hold what the last
// writes left and xfs_repair -n is clean.
func TestWriteConcurrent(t *testing.T) {
	writeConcurrent(t, func(t *testing.T) string { return makeWriteImage(t, false) })
}

// writeConcurrent runs writers, a creator and readers at once on the
// image mk makes (etc/motd, var/small and a short-form etc in it).
func writeConcurrent(t *testing.T, mk func(*testing.T) string) {
	img := mk(t)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"etc/motd", "var/small"}
	var wg sync.WaitGroup
	for w, p := range paths {
		ino := lookupPath(t, f, p).Ino
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				if _, err := f.WriteAt(ino, pattern(20000, byte(i)), int64(i%5)*8192); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if i%7 == 6 {
					if err := f.Truncate(ino, 5000); err != nil {
						t.Errorf("writer %d truncate: %v", w, err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // names come and go in a short-form directory
		defer wg.Done()
		etc := lookupPath(t, f, "etc").Ino
		for i := 0; i < 20; i++ {
			a, err := f.Create(etc, fmt.Sprintf("tmp-%d", i), 0o600)
			if err != nil {
				t.Errorf("create %d: %v", i, err)
				return
			}
			f.WriteAt(a.Ino, pattern(9000, byte(i)), 0)
			if i%2 == 0 {
				if err := f.Unlink(etc, fmt.Sprintf("tmp-%d", i)); err != nil {
					t.Errorf("unlink %d: %v", i, err)
				}
			}
		}
	}()
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				walkRacing(t, f, f.Root(), 0)
				f.StatFS()
			}
		}()
	}
	wg.Wait()
	repairClean(t, img)
	g := openImage(t, img)
	if n := len(testutil.EngineTree(t, g, false)); n != len(testutil.EngineTree(t, openImage(t, mk(t)), false))+10 {
		t.Errorf("%d files after 10 net creates", n)
	}
	for _, p := range paths {
		want := pattern(20000, 29) // the last write, at 4*8192
		a := lookupPath(t, g, p)
		got := make([]byte, 20000)
		if _, err := g.ReadAt(a.Ino, got, 4*8192); err != nil && a.Size != 4*8192+20000 || !bytes.Equal(got, want) {
			t.Errorf("%s: last write not read back (size %d, %v)", p, a.Size, err)
		}
	}
}

// TestWriteRefusals: what stays read-only, and that it says why.
func TestWriteRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfsprogs")
	mk := func(args ...string) string {
		img := filepath.Join(t.TempDir(), "x.img")
		testutil.Run(t, "truncate", "-s", "400M", img)
		testutil.Run(t, "mkfs.xfs", append([]string{"-q", "-f"}, append(args, img)...)...)
		return img
	}
	for _, c := range []struct {
		name string
		img  string
		want string
	}{
		{"v4 attr1", mk("-m", "crc=0", "-i", "attr=1"), "attr1"},
	} {
		f, err := OpenWritable(testutil.OpenDevice(t, c.img, true))
		if err != nil {
			t.Fatal(err)
		}
		if r := f.ReadOnlyReason(); !bytes.Contains([]byte(r), []byte(c.want)) {
			t.Errorf("%s: reason %q, want %q", c.name, r, c.want)
		}
		if err := f.Truncate(f.Root(), 0); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", c.name, err)
		}
	}
	f := openImage(t, mk("-m", "crc=1"))
	if _, err := f.WriteAt(f.Root(), []byte("x"), 0); !errors.Is(err, syscall.EROFS) || f.ReadOnlyReason() == "" {
		t.Errorf("Open (read-only): %v, reason %q", err, f.ReadOnlyReason())
	}
}

// walkRacing reads the whole tree while writers change it: names that
// go between listing and lookup are fine, any other error is not.
func walkRacing(t *testing.T, f *FS, dir volume.Ino, depth int) {
	ents, err := f.ReadDir(dir)
	if err != nil || depth > 8 {
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Errorf("readdir %d: %v", dir, err)
		}
		return
	}
	buf := make([]byte, 65536)
	for _, e := range ents {
		a, err := f.Lookup(dir, e.Name)
		switch {
		case errors.Is(err, syscall.ENOENT):
		case err != nil:
			t.Errorf("lookup %s: %v", e.Name, err)
		case a.Mode.IsDir():
			walkRacing(t, f, a.Ino, depth+1)
		case a.Mode.IsRegular():
			if _, err := f.ReadAt(a.Ino, buf, 0); err != nil && err != io.EOF && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("read %s: %v", e.Name, err)
			}
		}
	}
}

// TestInodeChunksAgainstKernel creates more files than the existing
// inode chunks hold, through offvm and through the kernel on a copy:
// offvm allocates new chunks (inobt, finobt, AGI and superblock counts);
// xfs_repair -n is clean and the kernel's mounts agree.
func TestInodeChunksAgainstKernel(t *testing.T) {
	img := makeWriteImage(t, false)
	ref := copyFile(t, img)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop", ref, mnt)
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	icount := be.Uint64(f.w.sb[sbIcount:])
	n := int(be.Uint64(f.w.sb[sbIfree:])) + 2*inosPerChunk + 10
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("pkg-%02d", i/60)
		if i%60 == 0 {
			if _, err := f.Mkdir(f.Root(), d, 0o755); err != nil {
				t.Fatalf("mkdir %s: %v", d, err)
			}
			os.Mkdir(filepath.Join(mnt, d), 0o755)
		}
		name := fmt.Sprintf("file-%04d", i)
		a, err := f.Create(lookupPath(t, f, d).Ino, name, 0o644)
		if err != nil {
			t.Fatalf("create %d (%s/%s): %v", i, d, name, err)
		}
		data := pattern(100+i*13, byte(i))
		if _, err := f.WriteAt(a.Ino, data, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mnt, d, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Run(t, "umount", mnt)
	if got := be.Uint64(f.w.sb[sbIcount:]); got < icount+2*inosPerChunk {
		t.Errorf("icount %d -> %d: fewer than two new chunks", icount, got)
	}
	repairClean(t, img)
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
}

// TestXattrsAgainstKernel sets, replaces and removes user., trusted. and
// security. attributes through offvm and through the kernel on a copy:
// on files, a short-form directory (whose data fork shrinks) and a
// device-less empty file, in short form and in an attribute leaf with
// remote values (and back to short form; a file with a leaf unlinked);
// xfs_repair -n is clean and the kernel's mounts list the same
// attributes, one leaf and then a node tree over leaves. A tree needing
// two node levels is refused.
func TestXattrsAgainstKernel(t *testing.T) {
	img := makeWriteImage(t, false)
	ref := copyFile(t, img)
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop", ref, mnt)
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	label := []byte("system_u:object_r:etc_t:s0\x00")
	steps := []struct {
		path, name string
		value      []byte // nil: remove
	}{
		{"etc/hostname", "security.selinux", label},
		{"etc/hostname", "user.offvm.patched", []byte("2026-12-03")},
		{"etc/hostname", "user.offvm.patched", []byte("replaced with a longer value")},
		{"etc", "security.selinux", []byte("system_u:object_r:etc_t:s0")},
		{"etc", "trusted.overlay.opaque", []byte("y")},
		{"var/frag", "user.big-file", pattern(200, 1)}, // a B+tree-mapped file: the fork is not moved
		{"opt/app.bin", "user.a", pattern(250, 2)},
		{"opt/app.bin", "user.b", pattern(40, 3)},
		{"opt/app.bin", "user.a", nil},
		{"var/small", "user.gone", []byte("soon")},
		{"var/small", "user.gone", nil}, // the last one: the fork goes
		{"usr/share/many", "security.selinux", []byte("system_u:object_r:usr_t:s0")},
		{"etc/motd", "security.selinux", label},
		{"etc/motd", "user.large", pattern(1000, 4)},  // an attribute leaf
		{"etc/motd", "user.remote", pattern(5000, 5)}, // a remote value of two blocks
		{"etc/motd", "trusted.t", pattern(300, 6)},
		{"etc/motd", "user.remote", pattern(9000, 7)}, // replaced: three blocks
		{"etc/motd", "user.large", nil},
		{"etc/motd", "user.remote", nil},
		{"etc/motd", "trusted.t", nil}, // back to short form
		{"var/log/big", "user.r", pattern(3500, 8)},
		{"usr/share/many", "user.dir", pattern(2000, 9)}, // a directory's leaf
		{"usr/share/many", "user.remote-dir", pattern(6000, 10)},
	}
	for i, s := range steps {
		a := lookupPath(t, f, s.path)
		p := filepath.Join(mnt, s.path)
		var err, kerr error
		if s.value == nil {
			err, kerr = f.RemoveXattr(a.Ino, s.name), unix.Removexattr(p, s.name)
		} else {
			err, kerr = f.SetXattr(a.Ino, s.name, s.value), unix.Setxattr(p, s.name, s.value, 0)
		}
		if s.path == "var/frag" {
			if errors.Is(err, syscall.EOPNOTSUPP) {
				unix.Removexattr(p, s.name)
				continue
			}
		}
		if err != nil || kerr != nil {
			t.Fatalf("step %d (%s %s): offvm %v, kernel %v", i, s.path, s.name, err, kerr)
		}
	}
	// the directory still takes names in its shrunk data fork
	if _, err := f.Create(lookupPath(t, f, "etc").Ino, "after-xattrs.conf", 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(mnt, "etc/after-xattrs.conf"), nil, 0o644)
	if err := f.Unlink(lookupPath(t, f, "var/log").Ino, "big"); err != nil { // its leaf freed
		t.Fatal(err)
	}
	os.Remove(filepath.Join(mnt, "var/log/big"))
	testutil.Run(t, "umount", mnt)
	etc := lookupPath(t, f, "etc").Ino
	for _, c := range []struct {
		name  string
		value []byte
		want  syscall.Errno
	}{
		{"user.huge", make([]byte, 70000), syscall.E2BIG},
		{"system.posix_acl_access", []byte{2, 0, 0, 0}, syscall.EOPNOTSUPP},
		{"user.", []byte("x"), syscall.EINVAL},
	} {
		if err := f.SetXattr(etc, c.name, c.value); !errors.Is(err, c.want) {
			t.Errorf("set %s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := f.RemoveXattr(etc, "user.absent"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("remove absent: %v, want ENODATA", err)
	}
	app := lookupPath(t, f, "opt/app.bin").Ino
	mnt2 := t.TempDir()
	testutil.Run(t, "mount", "-o", "loop", ref, mnt2)
	// fills the inode, then a leaf, then a node tree over leaves; some
	// go again (a leaf's worth from the middle), one with a remote value
	for i := 0; i < 150; i++ {
		name, v := fmt.Sprintf("user.fill%03d", i), pattern(100, byte(i))
		if i == 97 {
			v = pattern(7000, 7)
		}
		if err := f.SetXattr(app, name, v); err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
		unix.Setxattr(filepath.Join(mnt2, "opt/app.bin"), name, v, 0)
	}
	for i := 40; i < 80; i++ {
		name := fmt.Sprintf("user.fill%03d", i)
		if err := f.RemoveXattr(app, name); err != nil {
			t.Fatalf("remove %s: %v", name, err)
		}
		unix.Removexattr(filepath.Join(mnt2, "opt/app.bin"), name)
	}
	testutil.Run(t, "umount", mnt2)
	if m := attrMagic(t, img, uint64(app)); m != "0x3ebe" {
		t.Errorf("opt/app.bin's attribute block 0 has magic %s, want a node (0x3ebe)", m)
	}
	repairClean(t, img)
	// more leaves than one node names: a root over a level of nodes
	// (TestXattrTreeAgainstKernel writes such trees)
	var wide []sfAttr
	for i := 0; i < (4096-attrV5.nodeHdr)/8+1; i++ {
		wide = append(wide, sfAttr{name: []byte(fmt.Sprint(i)), value: make([]byte, 3000)})
	}
	if l, err := f.layoutLeaf(&rawInode{b: make([]byte, f.sb.inodeSize)}, wide); err != nil || be.Uint16(l.blocks[0][attrV5.info+2:]) != 2 {
		t.Errorf("%d attributes of a leaf each: %v, want a root at level 2", len(wide), err)
	}
	want, got := kernelView(t, ref), kernelView(t, img)
	testutil.CompareTrees(t, want, got)
	if len(got["etc/hostname"].Xattrs) != 2 || got["etc"].Xattrs["security.selinux"] == "" {
		t.Errorf("kernel sees %v on etc/hostname, %v on etc", got["etc/hostname"].Xattrs, got["etc"].Xattrs)
	}
	testutil.CompareTrees(t, got, testutil.EngineTree(t, openImage(t, img), true))
}
