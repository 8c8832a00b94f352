package btrfs

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

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/volume"
)

func openImage(t *testing.T, p string) *FS {
	t.Helper()
	f, err := Open(testutil.OpenDevice(t, p, false))
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	return f
}

// text is compressible, not trivially so.
func text(n, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d of file %d: the quick brown fox %d\n", i, seed, i*i%977)
	}
	return b.Bytes()[:n]
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeBtrfs makes a btrfs the way Fedora's installer lays it out (a
// "root" and a "home" subvolume, a snapshot) and fills it through the
// kernel, each of zlib, lzo and zstd compressing a part of it.
func makeBtrfs(t *testing.T) (img string, mnt string) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.btrfs", "btrfs-progs")
	dir := t.TempDir()
	img = filepath.Join(dir, "btrfs.img")
	testutil.Run(t, "truncate", "-s", "300M", img)
	testutil.Run(t, "mkfs.btrfs", "-q", "-f", "-L", "fedora", img)
	mnt = filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for i, comp := range []string{"zlib", "lzo", "zstd", "no"} {
		opt := "loop,compress-force=" + comp
		if comp == "no" {
			opt = "loop"
		}
		testutil.Run(t, "mount", "-o", opt, img, mnt)
		if i == 0 {
			testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(mnt, "root"))
			testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(mnt, "home"))
			write(t, filepath.Join(mnt, "root/etc/os-release"), []byte("NAME=\"Fedora Linux\"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME=\"Fedora Linux 40 (Workstation Edition)\"\n"))
			write(t, filepath.Join(mnt, "root/etc/hostname"), []byte("ws01\n"))
		}
		d := filepath.Join(mnt, "root", comp)
		write(t, filepath.Join(d, "small"), []byte("inline "+comp))
		write(t, filepath.Join(d, "text"), text(700000, i))
		write(t, filepath.Join(d, "tiny-compressible"), text(2000, i+10))
		rnd := make([]byte, 300000)
		for k := range rnd {
			rnd[k] = byte(k*k*7 + k>>3 + i)
		}
		write(t, filepath.Join(d, "mixed"), append(rnd, text(200000, i)...))
		for k := 0; k < 300; k++ {
			write(t, filepath.Join(d, "many", fmt.Sprintf("f%03d", k)), []byte(strings.Repeat("x", k)))
		}
		testutil.Run(t, "sync")
		testutil.Run(t, "umount", mnt)
	}
	testutil.Run(t, "mount", "-o", "loop", img, mnt)
	r := filepath.Join(mnt, "root")
	sp, _ := os.Create(filepath.Join(r, "sparse"))
	sp.WriteAt([]byte("start"), 0)
	sp.WriteAt([]byte("end"), 100<<20)
	sp.Close()
	exec.Command("fallocate", "-l", "1M", filepath.Join(r, "prealloc")).Run()
	nc, _ := os.Create(filepath.Join(r, "nocow"))
	nc.Close()
	testutil.Run(t, "chattr", "+C", filepath.Join(r, "nocow"))
	write(t, filepath.Join(r, "nocow"), text(50000, 99))
	os.Symlink("/etc/os-release", filepath.Join(r, "etc/link"))
	os.Symlink(strings.Repeat("deep/", 200), filepath.Join(r, "etc/longlink"))
	os.Link(filepath.Join(r, "etc/hostname"), filepath.Join(r, "etc/hostname.hard"))
	syscall.Mkfifo(filepath.Join(r, "fifo"), 0o600)
	for k, v := range map[string]string{"user.a": "1", "user.bigger": strings.Repeat("v", 3000), "security.selinux": "system_u:object_r:etc_t:s0\x00"} {
		if err := syscall.Setxattr(filepath.Join(r, "etc/os-release"), k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(mnt, "home/user/.bashrc"), []byte("alias ll='ls -l'\n"))
	testutil.Run(t, "btrfs", "-q", "subvolume", "snapshot", "-r", r, filepath.Join(mnt, "root-snap"))
	write(t, filepath.Join(r, "after-snapshot"), []byte("only in root"))
	testutil.Run(t, "umount", mnt)
	return img, mnt
}

// TestAgainstKernel: every file as the kernel shows it (a fresh
// read-only mount) and as offvm shows it, subvolumes, snapshot and
// compressed files included.
func TestAgainstKernel(t *testing.T) {
	img, mnt := makeBtrfs(t)
	if out, err := exec.Command("btrfs", "check", "--readonly", img).CombinedOutput(); err != nil {
		t.Fatalf("btrfs check: %v\n%s", err, out)
	}
	testutil.Run(t, "mount", "-o", "loop,ro", img, mnt)
	want := testutil.KernelTree(t, mnt)
	exec.Command("umount", mnt).Run()
	f := openImage(t, img)
	if f.DefaultSubvolume() != fsTreeID || f.Label() != "fedora" {
		t.Fatalf("default subvolume %d label %q", f.DefaultSubvolume(), f.Label())
	}
	testutil.CompareTrees(t, want, testutil.EngineTree(t, f, true))
	for comp, typ := range map[string]uint8{"zlib": compZlib, "lzo": compLZO, "zstd": compZstd, "no": compNone} {
		ex, _, err := f.extents(lookupPath(t, f, "root/"+comp+"/text"))
		if err != nil || len(ex) == 0 || ex[0].comp != typ {
			t.Errorf("root/%s/text: first extent %+v (%v), want compression %d", comp, ex[:min(len(ex), 1)], err, typ)
		}
		if sm, _, _ := f.extents(lookupPath(t, f, "root/"+comp+"/small")); len(sm) != 1 || sm[0].typ != extInline {
			t.Errorf("root/%s/small is not inline: %+v", comp, sm)
		}
	}

	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := testutil.EngineTree(t, f, false); len(got) != len(want) {
				t.Errorf("parallel reader saw %d files", len(got))
			}
		}()
	}
	wg.Wait()
}

// TestBadChecksum: one flipped byte in a file's data: the kernel and
// offvm both refuse to read it (EIO), offvm naming the file's inode;
// other files still read.
func TestBadChecksum(t *testing.T) {
	img, mnt := makeBtrfs(t)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	marker := text(700000, 3)[300000:300100] // no/text is stored uncompressed
	i := bytes.Index(b, marker)
	if i < 0 || bytes.Index(b[i+1:], marker) >= 0 {
		t.Fatalf("marker found at %d (want exactly once)", i)
	}
	b[i+50] ^= 0x55
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mount", "-o", "loop,ro", img, mnt)
	_, kerr := os.ReadFile(filepath.Join(mnt, "root/no/text"))
	exec.Command("umount", mnt).Run()
	if !errors.Is(kerr, syscall.EIO) {
		t.Fatalf("the kernel reads the damaged file: %v", kerr)
	}
	f := openImage(t, img)
	ino := lookupPath(t, f, "root/no/text")
	buf := make([]byte, 1<<20)
	_, err = f.ReadAt(ino, buf, 0)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), "inode") {
		t.Fatalf("offvm read of the damaged file: %v", err)
	}
	if n, err := f.ReadAt(lookupPath(t, f, "root/zstd/text"), buf, 0); n != 700000 || err != io.EOF {
		t.Fatalf("an undamaged file: %v", err)
	}
}

func lookupPath(t *testing.T, f *FS, p string) volume.Ino {
	ino := f.Root()
	for _, n := range strings.Split(p, "/") {
		a, err := f.Lookup(ino, n)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		ino = a.Ino
	}
	return ino
}
