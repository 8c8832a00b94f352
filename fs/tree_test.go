package fs

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// fatImage makes a bare FAT volume holding one file.
func fatImage(t *testing.T, path, content string) {
	t.Helper()
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "mcopy", "mtools")
	f, _ := os.Create(path)
	f.Truncate(16 << 20)
	f.Close()
	testutil.Run(t, "mkfs.vfat", "-n", "T", path)
	src := filepath.Join(t.TempDir(), "file.txt")
	os.WriteFile(src, []byte(content), 0o644)
	testutil.Run(t, "mcopy", "-i", path, src, "::/")
}

// TestTreeInProcess mounts a two-image library in this process and checks
// the node tree: names, info.json's size matching its content, and inode
// numbers that stay unique although both volumes number their files alike.
func TestTreeInProcess(t *testing.T) {
	testutil.RequireRoot(t)
	lib := t.TempDir()
	fatImage(t, filepath.Join(lib, "one.img"), "first")
	fatImage(t, filepath.Join(lib, "two.img"), "second image")
	mnt := t.TempDir()
	tree := NewTree(Options{Library: lib, ReadOnly: true})
	srv, err := Mount(mnt, tree, MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Unmount(); err != nil {
			exec.Command("umount", "-l", mnt).Run()
		}
	}()
	if err := srv.WaitMount(); err != nil {
		t.Fatal(err)
	}
	var inos []uint64
	for name, want := range map[string]string{"one.img": "first", "two.img": "second image"} {
		p := filepath.Join(mnt, name, "p0", "FILE.TXT")
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		inos = append(inos, st.Ino)
		info := filepath.Join(mnt, name, "info.json")
		fi, err := os.Stat(info)
		b, _ = os.ReadFile(info)
		if err != nil || fi.Size() != int64(len(b)) || len(b) == 0 {
			t.Errorf("%s: stat size %d, content %d bytes (%v)", info, fi.Size(), len(b), err)
		}
	}
	if len(inos) == 2 && inos[0] == inos[1] {
		t.Errorf("files of two volumes share inode number %d", inos[0])
	}
	if got := len(tree.Images()); got != 2 {
		t.Errorf("tree opened %d images, want 2", got)
	}
	if err := os.WriteFile(filepath.Join(mnt, "one.img", "p0", "new"), []byte("x"), 0o644); err == nil {
		t.Errorf("write succeeded on a read-only tree")
	}
}
