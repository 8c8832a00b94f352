package ntfs

import (
	"errors"
	"fmt"
	"github.com/offvm/offvm/volume"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestNameRules checks the contract's name rules and rename(2)/rmdir(2)
// error semantics on a volume made by mkntfs; ntfsresize then checks that
// refused operations left the volume consistent.
func TestNameRules(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	img := mkntfsImage(t, t.TempDir(), 16, 4096)
	v := openVol(t, img, 0, Options{})
	root := v.Root()
	f, err := v.Create(root, "Hosts.txt", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Mkdir(root, "Dir", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Create(d.Ino, "child", 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		do   func() error
		want syscall.Errno
	}{
		{"case twin", func() error { _, err := v.Create(root, "HOSTS.TXT", 0o644); return err }, syscall.EEXIST},
		{"case twin dir", func() error { _, err := v.Mkdir(root, "dir", 0o755); return err }, syscall.EEXIST},
		{"backslash", func() error { _, err := v.Create(root, `a\b`, 0o644); return err }, syscall.EINVAL},
		{"colon", func() error { _, err := v.Create(root, "a:b", 0o644); return err }, syscall.EINVAL},
		{"star", func() error { _, err := v.Create(root, "a*", 0o644); return err }, syscall.EINVAL},
		{"question", func() error { _, err := v.Create(root, "a?", 0o644); return err }, syscall.EINVAL},
		{"quote", func() error { _, err := v.Create(root, `a"`, 0o644); return err }, syscall.EINVAL},
		{"angle", func() error { _, err := v.Mkdir(root, "a<b>", 0o755); return err }, syscall.EINVAL},
		{"pipe", func() error { _, err := v.Create(root, "a|b", 0o644); return err }, syscall.EINVAL},
		{"control", func() error { _, err := v.Create(root, "a\x01", 0o644); return err }, syscall.EINVAL},
		{"trailing dot", func() error { _, err := v.Create(root, "name.", 0o644); return err }, syscall.EINVAL},
		{"trailing space", func() error { _, err := v.Create(root, "name ", 0o644); return err }, syscall.EINVAL},
		{"too long", func() error { _, err := v.Create(root, strings.Repeat("x", 256), 0o644); return err }, syscall.ENAMETOOLONG},
		{"rename to bad name", func() error { return v.Rename(root, "Hosts.txt", root, "a:b") }, syscall.EINVAL},
		{"lookup missing", func() error { _, err := v.Lookup(root, "nope"); return err }, syscall.ENOENT},
		{"unlink missing", func() error { return v.Unlink(root, "nope") }, syscall.ENOENT},
		{"rmdir not empty", func() error { return v.Rmdir(root, "dir") }, syscall.ENOTEMPTY},
		{"unlink dir", func() error { return v.Unlink(root, "Dir") }, syscall.EISDIR},
		{"rmdir file", func() error { return v.Rmdir(root, "hosts.txt") }, syscall.ENOTDIR},
		{"rename over non-empty dir", func() error {
			if _, err := v.Mkdir(root, "other", 0o755); err != nil {
				return err
			}
			return v.Rename(root, "other", root, "Dir")
		}, syscall.ENOTEMPTY},
		{"dir into itself", func() error { return v.Rename(root, "Dir", d.Ino, "x") }, syscall.EINVAL},
		{"write to dir", func() error { _, err := v.WriteAt(d.Ino, []byte("x"), 0); return err }, syscall.EISDIR},
		{"unlink metadata", func() error { return v.Unlink(root, "$MFT") }, syscall.EPERM},
		{"missing xattr", func() error { _, err := v.GetXattr(f.Ino, "user.none"); return err }, syscall.ENODATA},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	// Case-insensitive lookups and a case-changing rename.
	if _, err := v.Lookup(root, "HOSTS.txt"); err != nil {
		t.Errorf("case-insensitive lookup: %v", err)
	}
	if err := v.Rename(root, "hosts.txt", root, "HOSTS.TXT"); err != nil {
		t.Fatalf("case rename: %v", err)
	}
	checkConsistent(t, img)
	mnt, unmount := mount3g(t, img, "ro")
	defer unmount()
	ents, _ := os.ReadDir(mnt)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "Dir,HOSTS.TXT,other" {
		t.Errorf("ntfs-3g lists %q", got)
	}
}

// TestReadOnlyReasons checks that writes are refused (EROFS) where ntfs-3g
// refuses them too: a hibernated volume, and when opened read-only.
func TestReadOnlyReasons(t *testing.T) {
	requireNTFSTools(t)
	dir := t.TempDir()
	img := mkntfsImage(t, dir, 16, 4096)
	v := openVol(t, img, 0, Options{ReadOnly: true})
	if _, err := v.Create(v.Root(), "x", 0o644); !errors.Is(err, syscall.EROFS) || v.ReadOnlyReason() == "" {
		t.Errorf("ReadOnly: %v, reason %q", err, v.ReadOnlyReason())
	}
	mnt, unmount := mount3g(t, img)
	if err := os.WriteFile(filepath.Join(mnt, "hiberfil.sys"), append([]byte("hibr"), make([]byte, 8192)...), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()
	v = openVol(t, img, 0, Options{})
	if !strings.Contains(v.ReadOnlyReason(), "hibernat") {
		t.Errorf("hibernated volume: reason %q", v.ReadOnlyReason())
	}
	if _, err := v.Create(v.Root(), "x", 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("hibernated volume: create gave %v", err)
	}
	mnt2, err := os.MkdirTemp("", "ntfs3g-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(mnt2)
	out, err := exec.Command("ntfs-3g", img, mnt2).CombinedOutput()
	if err != nil {
		t.Logf("ntfs-3g refuses it: %s", out)
		return
	}
	defer exec.Command("fusermount", "-u", mnt2).Run()
	// ntfs-3g falls back to a read-only mount: writing must fail there too.
	if werr := os.WriteFile(filepath.Join(mnt2, "probe"), []byte("x"), 0o644); werr == nil {
		t.Errorf("ntfs-3g accepted a write on the hibernated volume; the oracle disagrees (%s)", out)
	} else {
		t.Logf("ntfs-3g agrees: %s; write: %v", strings.TrimSpace(string(out)), werr)
	}
}

// TestConcurrentReaders walks one volume from several goroutines (run
// with -race).
func TestConcurrentReaders(t *testing.T) {
	p := corpusVolume(t, corpusImages[0])
	v := openVol(t, p, 0, Options{ReadOnly: true})
	want := walkVolume(t, v)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			diffTrees(t, want, walkVolume(t, v))
		}()
	}
	wg.Wait()
}

// reparseEntries lists the keys of $Extend\$Reparse:$R.
func reparseEntries(t *testing.T, img string) []string {
	v := openVol(t, img, 0, Options{ReadOnly: true})
	o := v.newOp()
	dw, err := o.reparseIndex()
	if err != nil || dw == nil {
		t.Fatalf("$Reparse: %v", err)
	}
	var out []string
	var walk func(vcn int64)
	walk = func(vcn int64) {
		n, err := dw.readNode(vcn)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i <= len(n.entries); i++ {
			if c := n.childAt(i); c >= 0 {
				walk(c)
			}
			if i < len(n.entries) {
				out = append(out, fmt.Sprintf("%x", n.entries[i].key))
			}
		}
	}
	walk(-1)
	return out
}

// TestSymlinkReparseIndex creates symlinks with our engine, deletes one
// through ntfs-3g (which removes its $R entry by looking it up in the
// index) and checks that exactly the other entry is left.
func TestSymlinkReparseIndex(t *testing.T) {
	requireNTFSTools(t)
	img := mkntfsImage(t, t.TempDir(), 16, 4096)
	v := openVol(t, img, 0, Options{})
	var keep volume.Attr
	if _, err := v.Mkdir(v.Root(), "target", 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range []string{"gone", "kept"} {
		d, _ := v.Lookup(v.Root(), "target")
		if _, err := v.Create(d.Ino, n, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := v.Symlink(v.Root(), n, "target/"+n)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			keep = a
		}
	}
	if got := reparseEntries(t, img); len(got) != 2 {
		t.Fatalf("$R after two symlinks: %v", got)
	}
	mnt, unmount := mount3g(t, img)
	if l, err := os.Readlink(filepath.Join(mnt, "kept")); err != nil || l != "target/kept" {
		t.Errorf("ntfs-3g readlink: %q %v", l, err)
	}
	if err := os.Remove(filepath.Join(mnt, "gone")); err != nil {
		t.Fatal(err)
	}
	unmount()
	got := reparseEntries(t, img)
	in, _ := openVol(t, img, 0, Options{ReadOnly: true}).loadInode(uint64(keep.Ino))
	want := fmt.Sprintf("%x", reparseKey(tagSymlink, in.num|uint64(in.seq)<<48))
	if len(got) != 1 || got[0] != want {
		t.Errorf("$R after ntfs-3g removed one link: %v, want [%s]", got, want)
	}
	checkConsistent(t, img)
}

// TestFailedWritesRollBack runs writes into ENOSPC (a full volume, a full
// record) and wants the volume consistent afterwards, with ntfs-3g's free
// space count equal to ours: failed operations give their clusters and
// records back.
func TestFailedWritesRollBack(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	img := mkntfsImage(t, t.TempDir(), 16, 4096)
	v := openVol(t, img, 0, Options{})
	a, err := v.Create(v.Root(), "too-big.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := v.StatFS()
	if _, err := v.WriteAt(a.Ino, make([]byte, 64<<20), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("64 MiB into 16 MiB: %v", err)
	}
	after, _ := v.StatFS()
	if after.BlocksFree != before.BlocksFree {
		t.Errorf("free clusters %d before, %d after a failed write", before.BlocksFree, after.BlocksFree)
	}
	// Hard links far beyond what the base record holds: they go to
	// extension records under an attribute list.
	d, _ := v.Mkdir(v.Root(), "links", 0o755)
	for i := 0; i < 200; i++ {
		if _, err := v.Link(a.Ino, d.Ino, fmt.Sprintf("a-rather-long-hard-link-name-number-%03d.bin", i)); err != nil {
			t.Fatalf("hard link %d: %v", i, err)
		}
	}
	for i := 0; i < 200; i += 3 { // and some go again
		if err := v.Unlink(d.Ino, fmt.Sprintf("a-rather-long-hard-link-name-number-%03d.bin", i)); err != nil {
			t.Fatalf("unlink of hard link %d: %v", i, err)
		}
	}
	checkConsistent(t, img)
	if out := testutil.Run(t, "ntfsinfo", "-F", "/too-big.bin", img); !strings.Contains(out, "$ATTRIBUTE_LIST") {
		t.Errorf("ntfsinfo shows no attribute list for a file of 134 names")
	}
	mnt, unmount := mount3g(t, img, "ro")
	defer unmount()
	compareStatFS(t, mnt, img)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mnt, "links", "a-rather-long-hard-link-name-number-199.bin"), &st); err != nil || st.Nlink != 1+200-67 {
		t.Errorf("ntfs-3g: %v, %d links, want %d", err, st.Nlink, 1+200-67)
	}
	if ents, err := os.ReadDir(filepath.Join(mnt, "links")); err != nil || len(ents) != 200-67 {
		t.Errorf("ntfs-3g lists %d links (%v), want %d", len(ents), err, 200-67)
	}
	if st, err := os.Stat(filepath.Join(mnt, "too-big.bin")); err != nil || st.Size() != 0 {
		t.Errorf("too-big.bin after the failed write: %v %v", st, err)
	}
}
