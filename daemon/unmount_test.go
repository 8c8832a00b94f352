package daemon

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An unmount whose read loops never end, because a process in another
// mount namespace holds a copy of the tree, used to hang `offvm unmount`
// for ever with the changes uncommitted. The daemon now aborts the FUSE
// connection after unmountBound and commits; mtools reads the change.
func TestUnmountHeldByAnotherNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "unshare", "util-linux")
	testutil.RequireTool(t, "mkfs.vfat", "dosfstools")
	testutil.RequireTool(t, "mtype", "mtools")
	lib := t.TempDir()
	img := filepath.Join(lib, "one.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 16<<20))
	testutil.Run(t, "mkfs.vfat", "-n", "HELD", img)
	mnt := t.TempDir()

	old := unmountBound
	unmountBound = 2 * time.Second
	defer func() { unmountBound = old }()
	logs := &syncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, nil)))
	defer slog.SetDefault(prev)

	d, err := Start(Options{Library: lib, Mountpoint: mnt})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(mnt, "one.img", "p0", "kept.txt"), []byte("written while held\n"), 0o644))

	// A copy of the mount in a private namespace keeps the connection up.
	holder := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", "echo ready; exec sleep 120")
	out, err := holder.StdoutPipe()
	must(t, err)
	must(t, holder.Start())
	defer func() { holder.Process.Kill(); holder.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("holder: %q, %v", line, err)
	}

	done := make(chan error, 1)
	go func() { done <- Unmount(mnt, false, func(string) {}, func(string) {}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unmount: %v", err)
		}
	case <-time.After(30 * time.Second):
		exec.Command("umount", "-l", mnt).Run()
		t.Fatalf("offvm unmount did not return in 30 s with the tree held elsewhere; log:\n%s", logs)
	}
	must(t, d.Wait())
	if !strings.Contains(logs.String(), "aborting the FUSE connection") {
		t.Errorf("the daemon did not say it aborted the connection; log:\n%s", logs)
	}
	cmd := exec.Command("mtype", "-i", img, "::/kept.txt")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if got, err := cmd.Output(); err != nil || string(got) != "written while held\n" {
		t.Errorf("mtype kept.txt after the commit: %q, %v", got, err)
	}
	if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
