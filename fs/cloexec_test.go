package fs

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// A program offvm starts must not inherit the /dev/fuse descriptor: a
// child holding it keeps the connection alive after the daemon dies, and
// every process then touching the mount blocks forever (D state).
func TestMountFuseFDNotInherited(t *testing.T) {
	testutil.RequireRoot(t)
	mnt := t.TempDir()
	srv, err := Mount(mnt, NewTree(Options{Library: t.TempDir(), ReadOnly: true}), MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Unmount(); err != nil {
			exec.Command("umount", "-l", mnt).Run()
		}
	}()
	if n := fuseFDs(t, "/proc/self/fd"); n == 0 {
		t.Fatal("this process holds no /dev/fuse descriptor after mounting")
	}
	// the child lists its own descriptors, as any program offvm runs would hold them
	out, err := exec.Command("/bin/sh", "-c", "for f in /proc/$$/fd/*; do readlink $f || true; done").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "/dev/fuse") {
		t.Errorf("a child process inherited /dev/fuse:\n%s", out)
	}
}

func fuseFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if dst, _ := os.Readlink(dir + "/" + e.Name()); dst == "/dev/fuse" {
			n++
		}
	}
	return n
}
