package ntfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
	"golang.org/x/sys/unix"
)

// wop is one step of a write workload, applied the same way through
// ntfs-3g (the reference) and through our engine.
type wop struct {
	kind string // write, trunc, create, mkdir, unlink, rmdir, rename, link, symlink, xattr, rmxattr, utimes
	p, q string
	data []byte
	off  int64
	size int64
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>9)
	}
	return b
}

var fixedTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// applyHost runs ops through a mounted file system.
func applyHost(t testing.TB, mnt string, ops []wop) {
	t.Helper()
	for _, o := range ops {
		p, q := filepath.Join(mnt, o.p), filepath.Join(mnt, o.q)
		var err error
		switch o.kind {
		case "write":
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
				_, err = f.WriteAt(o.data, o.off)
				f.Close()
			}
		case "trunc":
			err = os.Truncate(p, o.size)
		case "create":
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
				f.Close()
			}
		case "mkdir":
			err = os.Mkdir(p, 0o755)
		case "unlink":
			err = os.Remove(p)
		case "rmdir":
			err = os.Remove(p)
		case "rename":
			err = os.Rename(p, q)
		case "link":
			err = os.Link(p, q)
		case "symlink":
			err = os.Symlink(o.q, p)
		case "xattr":
			out, e := exec.Command("setfattr", "-n", o.q, "-v", "0x"+fmt.Sprintf("%x", o.data), p).CombinedOutput()
			if e != nil {
				err = fmt.Errorf("%v: %s", e, out)
			}
		case "rmxattr":
			out, e := exec.Command("setfattr", "-x", o.q, p).CombinedOutput()
			if e != nil {
				err = fmt.Errorf("%v: %s", e, out)
			}
		case "utimes":
			err = os.Chtimes(p, fixedTime, fixedTime)
		default:
			t.Fatalf("unknown op %q", o.kind)
		}
		if err != nil {
			t.Fatalf("ntfs-3g %s %s: %v", o.kind, o.p, err)
		}
	}
}

// resolve walks a slash path through our engine.
func resolve(v *Volume, p string) (volume.Ino, error) {
	ino := v.Root()
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		a, err := v.Lookup(ino, part)
		if err != nil {
			return 0, err
		}
		ino = a.Ino
	}
	return ino, nil
}

// applyEngine runs ops through our engine.
func applyEngine(t testing.TB, v *Volume, ops []wop) {
	t.Helper()
	for _, o := range ops {
		dir, base := path.Split(o.p)
		d, err := resolve(v, dir)
		if err != nil {
			t.Fatalf("engine %s %s: parent: %v", o.kind, o.p, err)
		}
		switch o.kind {
		case "write":
			ino, e := resolve(v, o.p)
			if e != nil {
				var a volume.Attr
				a, e = v.Create(d, base, 0o644)
				ino = a.Ino
			}
			if e == nil {
				_, e = v.WriteAt(ino, o.data, o.off)
			}
			err = e
		case "trunc":
			ino, e := resolve(v, o.p)
			if e == nil {
				e = v.Truncate(ino, o.size)
			}
			err = e
		case "create":
			_, err = v.Create(d, base, 0o644)
		case "mkdir":
			_, err = v.Mkdir(d, base, 0o755)
		case "unlink":
			err = v.Unlink(d, base)
		case "rmdir":
			err = v.Rmdir(d, base)
		case "rename":
			qd, qb := path.Split(o.q)
			nd, e := resolve(v, qd)
			if e == nil {
				e = v.Rename(d, base, nd, qb)
			}
			err = e
		case "link":
			ino, e := resolve(v, o.p)
			qd, qb := path.Split(o.q)
			nd, e2 := resolve(v, qd)
			if e == nil && e2 == nil {
				_, e = v.Link(ino, nd, qb)
			}
			if e == nil {
				e = e2
			}
			err = e
		case "symlink":
			_, err = v.Symlink(d, base, o.q)
		case "xattr", "rmxattr", "utimes":
			ino, e := resolve(v, o.p)
			if e == nil {
				switch o.kind {
				case "xattr":
					e = v.SetXattr(ino, o.q, o.data)
				case "rmxattr":
					e = v.RemoveXattr(ino, o.q)
				default:
					tm := fixedTime
					e = v.SetTimes(ino, &tm, &tm)
				}
			}
			err = e
		}
		if err != nil {
			t.Fatalf("engine %s %s %s: %v", o.kind, o.p, o.q, err)
		}
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
}

// baseImage builds a small populated volume through ntfs-3g.
func baseImage(t testing.TB, dir string, cluster int, extra ...string) string {
	img := mkntfsImage(t, dir, 48, cluster, extra...)
	mnt, unmount := mount3g(t, img)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(mnt, "Windows", "System32", "drivers", "etc"), 0o755))
	must(os.WriteFile(filepath.Join(mnt, "Windows", "System32", "drivers", "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644))
	must(os.WriteFile(filepath.Join(mnt, "small.txt"), []byte("small file"), 0o644))
	must(os.WriteFile(filepath.Join(mnt, "medium.bin"), pattern(200000, 1), 0o644))
	must(os.WriteFile(filepath.Join(mnt, "large.bin"), pattern(3<<20, 2), 0o644))
	must(os.Mkdir(filepath.Join(mnt, "many"), 0o755))
	for i := 0; i < 300; i++ {
		must(os.WriteFile(filepath.Join(mnt, "many", fmt.Sprintf("file-%04d.dat", i)), pattern(i*13, byte(i)), 0o644))
	}
	must(os.Mkdir(filepath.Join(mnt, "emptydir"), 0o755))
	if cluster <= 4096 {
		cd := filepath.Join(mnt, "compressed")
		must(os.Mkdir(cd, 0o755))
		testutil.Run(t, "setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800", cd)
		must(os.WriteFile(filepath.Join(cd, "c.txt"), bytes.Repeat([]byte("compress me please "), 20000), 0o644))
	}
	sp, err := os.Create(filepath.Join(mnt, "sparse.bin"))
	must(err)
	sp.WriteAt([]byte("head"), 0)
	sp.WriteAt([]byte("tail"), 4<<20)
	must(sp.Close())
	unmount()
	return img
}

// copyFile copies an image keeping its holes (the images are sparse).
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	testutil.Run(t, "cp", "--sparse=always", src, dst)
}

// checkConsistent runs ntfsresize's consistency check on img.
func checkConsistent(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", img).CombinedOutput()
	s := string(out)
	if err != nil || strings.Contains(strings.ToLower(s), "error") || strings.Contains(s, "corrupt") {
		t.Errorf("ntfsresize --info --force --no-action reports a problem (%v):\n%s", err, s)
	}
	if os.Getenv("NTFS_SHOW") != "" {
		t.Logf("ntfsresize:\n%s", s)
	}
}

// compareStatFS wants our free cluster count to be ntfs-3g's.
func compareStatFS(t testing.TB, mnt, img string) {
	t.Helper()
	var sf unix.Statfs_t
	if err := unix.Statfs(mnt, &sf); err != nil {
		t.Fatal(err)
	}
	st, err := openVol(t, img, 0, Options{ReadOnly: true}).StatFS()
	if err != nil {
		t.Fatal(err)
	}
	if st.BlocksFree != sf.Bfree || int64(st.BlockSize) != int64(sf.Bsize) {
		t.Errorf("statfs: we say %d free of %d-byte clusters, ntfs-3g says %d of %d", st.BlocksFree, st.BlockSize, sf.Bfree, sf.Bsize)
	}
}

// removeAllWith3g mounts img read-write with ntfs-3g and deletes every
// user file: ntfs-3g must be able to edit what we wrote (its index
// lookups and removals run over our B+ trees, names and bitmaps).
func removeAllWith3g(t testing.TB, img string) {
	t.Helper()
	mnt, unmount := mount3g(t, img)
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(mnt, e.Name())); err != nil {
			t.Errorf("ntfs-3g cannot delete what we wrote: %v", err)
		}
	}
	unmount()
	checkConsistent(t, img)
}

// sample picks up to n regular files of at most 4 MiB, spread over the
// sorted paths, so that tool checks stay quick on big trees.
func sample(tree map[string]entry, n int) []string {
	var all []string
	for p, e := range tree {
		if e.Mode == "file" && e.Size <= 4<<20 {
			all = append(all, p)
		}
	}
	sort.Strings(all)
	if len(all) <= n {
		return all
	}
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, all[i*len(all)/n])
	}
	return out
}

// checkTools runs ntfsls -R, ntfscat on every file and fls -r on img.
func checkTools(t testing.TB, img string, want map[string]entry) {
	t.Helper()
	if _, err := exec.LookPath("ntfsls"); err == nil {
		out := testutil.Run(t, "ntfsls", "-R", "-f", img)
		if strings.Contains(out, "rror") {
			t.Errorf("ntfsls -R: %s", out)
		}
	}
	for _, p := range sample(want, 25) {
		e := want[p]
		out, err := exec.Command("ntfscat", "-f", img, p).Output()
		if err != nil {
			t.Errorf("ntfscat %s: %v", p, err)
			continue
		}
		if int64(len(out)) != e.Size {
			t.Errorf("ntfscat %s: %d bytes, want %d", p, len(out), e.Size)
		}
	}
	if _, err := exec.LookPath("fls"); err == nil {
		out := testutil.Run(t, "fls", "-r", "-p", img)
		n := 0
		for _, line := range strings.Split(out, "\n") {
			_, name, ok := strings.Cut(line, "\t")
			if ok && !strings.HasPrefix(name, "$") && !strings.Contains(name, ":") {
				n++
			}
		}
		if n < len(want)/2 {
			t.Errorf("fls -r lists %d names for %d paths:\n%.2000s", n, len(want), out)
		}
	}
}

var writeGroups = []struct {
	name string
	ops  []wop
}{
	{"compressed-sparse", []wop{
		{kind: "write", p: "compressed/c.txt", data: []byte("patched in the middle"), off: 100000},
		{kind: "write", p: "compressed/new.txt", data: bytes.Repeat([]byte("new file in a compressed dir "), 1000)},
		{kind: "write", p: "sparse.bin", data: pattern(10000, 3), off: 2 << 20},
		{kind: "write", p: "sparse.bin", data: []byte("beyond"), off: 6 << 20},
	}},
	{"overwrite", []wop{
		{kind: "write", p: "small.txt", data: []byte("SMALL")},
		{kind: "write", p: "medium.bin", data: pattern(5000, 9), off: 70000},
		{kind: "write", p: "large.bin", data: pattern(1<<20, 8), off: 1 << 20},
		{kind: "write", p: "Windows/System32/drivers/etc/hosts", data: []byte("10.0.0.1 patched\n"), off: 20},
	}},
	{"append-grow", []wop{
		{kind: "write", p: "small.txt", data: pattern(3000, 3), off: 10},
		{kind: "write", p: "medium.bin", data: pattern(500000, 4), off: 200000},
		{kind: "write", p: "many/file-0001.dat", data: pattern(100, 5), off: 5000},
		{kind: "write", p: "large.bin", data: []byte("tail"), off: 5 << 20},
	}},
	{"create", []wop{
		{kind: "create", p: "new-empty.txt"},
		{kind: "write", p: "new-small.txt", data: []byte("hello from offvm")},
		{kind: "write", p: "Windows/System32/new-big.dll", data: pattern(2<<20+5, 6)},
		{kind: "write", p: "emptydir/inside.txt", data: []byte("inside")},
		{kind: "write", p: "many/zzz-late.txt", data: []byte("late")},
		{kind: "write", p: "ünïcødé-名前.txt", data: []byte("unicode")},
	}},
	{"mkdir-rmdir", []wop{
		{kind: "mkdir", p: "a"}, {kind: "mkdir", p: "a/b"}, {kind: "mkdir", p: "a/b/c"},
		{kind: "write", p: "a/b/c/deep.txt", data: []byte("deep")},
		{kind: "rmdir", p: "emptydir"},
		{kind: "mkdir", p: "gone"}, {kind: "rmdir", p: "gone"},
	}},
	{"unlink-truncate", []wop{
		{kind: "unlink", p: "medium.bin"},
		{kind: "unlink", p: "many/file-0100.dat"},
		{kind: "unlink", p: "many/file-0000.dat"},
		{kind: "trunc", p: "large.bin", size: 100000},
		{kind: "trunc", p: "small.txt", size: 0},
		{kind: "trunc", p: "many/file-0200.dat", size: 10000},
		{kind: "trunc", p: "many/file-0201.dat", size: 5},
	}},
	{"rename", []wop{
		{kind: "rename", p: "small.txt", q: "renamed.txt"},
		{kind: "rename", p: "medium.bin", q: "Windows/medium-moved.bin"},
		{kind: "rename", p: "many/file-0005.dat", q: "many/file-0006.dat"},
		{kind: "rename", p: "emptydir", q: "Windows/System32/moved-dir"},
		{kind: "rename", p: "large.bin", q: "LARGE.BIN"},
	}},
	{"links-xattrs-times", []wop{
		{kind: "link", p: "small.txt", q: "Windows/small-link.txt"},
		{kind: "symlink", p: "to-hosts", q: "Windows/System32/drivers/etc/hosts"},
		{kind: "xattr", p: "small.txt", q: "user.Zone.Identifier", data: []byte("[ZoneTransfer]\r\nZoneId=3\r\n")},
		{kind: "xattr", p: "medium.bin", q: "user.big", data: pattern(3000, 7)},
		{kind: "utimes", p: "large.bin"},
		{kind: "xattr", p: "medium.bin", q: "system.ntfs_attrib_be", data: []byte{0, 0, 0, 0x23}},
		{kind: "rmxattr", p: "small.txt", q: "user.Zone.Identifier"},
	}},
}

// bigDirOps fills a directory with 3,000 names (node splits, a root
// pushed down, $MFT growth), then removes and renames many of them
// (entry removal from leaves and inner nodes, index rebuilds).
func bigDirOps() []wop {
	ops := []wop{{kind: "mkdir", p: "big"}}
	for i := 0; i < 3000; i++ {
		n := fmt.Sprintf("big/entry-%05d-%s.txt", (i*7919)%3000, strings.Repeat("y", i%50))
		if i%10 == 0 {
			ops = append(ops, wop{kind: "write", p: n, data: []byte(n)})
		} else {
			ops = append(ops, wop{kind: "create", p: n})
		}
	}
	for i := 0; i < 3000; i += 3 {
		ops = append(ops, wop{kind: "unlink", p: fmt.Sprintf("big/entry-%05d-%s.txt", (i*7919)%3000, strings.Repeat("y", i%50))})
	}
	for i := 1; i < 3000; i += 30 {
		ops = append(ops, wop{kind: "rename", p: fmt.Sprintf("big/entry-%05d-%s.txt", (i*7919)%3000, strings.Repeat("y", i%50)), q: fmt.Sprintf("many/moved-%d", i)})
	}
	return ops
}

func TestWriteMatchesNtfs3g(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "setfattr", "attr")
	// Every group on 4 KiB clusters; a selection on 512-byte and 64 KiB
	// clusters (index blocks smaller than a cluster) to bound the run time.
	selection := map[int]map[string]bool{
		512:   {"compressed-sparse": true, "create": true, "unlink-truncate": true, "rename": true},
		65536: {"append-grow": true, "create": true, "mkdir-rmdir": true, "links-xattrs-times": true, "unlink-truncate": true},
	}
	// cluster 4097 stands for 4 KiB clusters on 4 KiB sectors (4Kn disks).
	selection[4097] = map[string]bool{"create": true, "unlink-truncate": true, "rename": true}
	for _, cluster := range []int{4096, 512, 65536, 4097} {
		dir := t.TempDir()
		var base string
		if cluster == 4097 {
			base = baseImage(t, dir, 4096, "-s", "4096")
		} else {
			base = baseImage(t, dir, cluster)
		}
		var groups []struct {
			name string
			ops  []wop
		}
		for _, g := range writeGroups {
			if sel := selection[cluster]; sel == nil || sel[g.name] {
				groups = append(groups, g)
			}
		}
		if cluster == 4096 {
			groups = append(groups, struct {
				name string
				ops  []wop
			}{"bigdir", bigDirOps()})
		}
		for _, g := range groups {
			t.Run(fmt.Sprintf("c%d/%s", cluster, g.name), func(t *testing.T) {
				ref, ours := filepath.Join(dir, g.name+".ref"), filepath.Join(dir, g.name+".ours")
				copyFile(t, base, ref)
				copyFile(t, base, ours)
				mnt, unmount := mount3g(t, ref)
				applyHost(t, mnt, g.ops)
				unmount()
				v := openVol(t, ours, 0, Options{})
				applyEngine(t, v, g.ops)
				checkConsistent(t, ours)
				mnt, unmount = mount3g(t, ref, "ro")
				want := walkHost(t, mnt)
				unmount()
				mnt, unmount = mount3g(t, ours, "ro")
				got := walkHost(t, mnt)
				compareStatFS(t, mnt, ours)
				if g.name == "links-xattrs-times" {
					st, err := os.Stat(filepath.Join(mnt, "large.bin"))
					if err != nil || !st.ModTime().Equal(fixedTime) {
						t.Errorf("large.bin mtime through ntfs-3g: %v %v", st.ModTime(), err)
					}
				}
				unmount()
				diffTrees(t, want, got)
				if os.Getenv("NTFS_SHOW") != "" {
					t.Logf("%d paths; e.g. %+v", len(got), got["/small.txt"])
					exec.Command("cp", ours, "/tmp/"+g.name+".ours").Run()
				}
				checkTools(t, ours, got)
				checkIcat(t, ours, got)
				// Our own reader must agree with ntfs-3g too.
				diffTrees(t, got, walkVolume(t, openVol(t, ours, 0, Options{ReadOnly: true})))
				removeAllWith3g(t, ours)
			})
		}
	}
}

var _ = bytes.Equal

// TestLargeFile writes a 100 MiB file in 1 MiB calls and a 0-byte file,
// then has ntfsresize, ntfs-3g and icat check them.
func TestLargeFile(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	img := mkntfsImage(t, t.TempDir(), 256, 4096)
	v := openVol(t, img, 0, Options{})
	a, err := v.Create(v.Root(), "huge.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for i := 0; i < 100; i++ {
		chunk := pattern(1<<20, byte(i))
		h.Write(chunk)
		if _, err := v.WriteAt(a.Ino, chunk, int64(i)<<20); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Create(v.Root(), "zero.bin", 0o644); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, img)
	mnt, unmount := mount3g(t, img, "ro")
	got := walkHost(t, mnt)
	compareStatFS(t, mnt, img)
	unmount()
	if e := got["/huge.bin"]; e.Size != 100<<20 || e.Hash != hex.EncodeToString(h.Sum(nil)) {
		t.Errorf("huge.bin through ntfs-3g: %d bytes, hash %s", e.Size, e.Hash)
	}
	if e := got["/zero.bin"]; e.Mode != "file" || e.Size != 0 {
		t.Errorf("zero.bin through ntfs-3g: %+v", e)
	}
	checkIcat(t, img, map[string]entry{"/zero.bin": got["/zero.bin"]})
	out := testutil.Run(t, "ntfsinfo", "-v", "-f", "-F", "/huge.bin", img)
	// mkntfs puts $LogFile mid-volume: one break there is all we allow.
	if !strings.Contains(out, "Total runs: 1 ") && !strings.Contains(out, "Total runs: 2 ") {
		t.Errorf("huge.bin is fragmented (ntfsinfo):\n%s", out[strings.Index(out, "$DATA"):])
	}
}
