package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

// TestKillDaemonUnderLoad kills the daemon (SIGKILL) while 4 writers and
// 4 readers work in an NTFS volume of a qcow2 image, several times: the
// image is as it was (nothing is committed before unmount), qemu-img
// check and offvm check find it sound, and a new mount on the same
// mountpoint (the dead daemon's socket and locks left behind) works and
// commits.
func TestKillDaemonUnderLoad(t *testing.T) {
	testutil.RequireTool(t, "ntfscat", "ntfs-3g")
	ntfs := makeNTFS(t, 64, "DATA", func(dir string) {
		for i := 0; i < 4; i++ {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.bin", i)), bytes.Repeat([]byte{byte(i)}, 300000), 0o644))
		}
	})
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 64, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	lib := t.TempDir()
	img := filepath.Join(lib, "vm.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	orig := sumFile(t, img)
	mnt := t.TempDir()
	for round := 0; round < 3; round++ {
		pidFile := filepath.Join(t.TempDir(), "pid")
		mustOffvm(t, "mount", "--pid-file", pidFile, lib, mnt)
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		p1 := filepath.Join(mnt, "vm.qcow2", "p1")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var ops sync.Map
		for w := 0; w < 4; w++ {
			wg.Add(2)
			go func(w int) { // writer
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if os.WriteFile(filepath.Join(p1, fmt.Sprintf("w%d-%d.bin", w, i%5)), bytes.Repeat([]byte{byte(i)}, 20000+w), 0o644) != nil {
						return
					}
					ops.Store(fmt.Sprint("w", w), i)
				}
			}(w)
			go func(w int) { // reader
				defer wg.Done()
				want := bytes.Repeat([]byte{byte(w)}, 300000)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					got, err := os.ReadFile(filepath.Join(p1, fmt.Sprintf("r%d.bin", w)))
					if err != nil {
						return
					}
					if !bytes.Equal(got, want) {
						t.Errorf("reader %d read wrong bytes while writers worked", w)
						return
					}
					ops.Store(fmt.Sprint("r", w), i)
				}
			}(w)
		}
		time.Sleep(time.Duration(300+round*400) * time.Millisecond)
		syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(pid, 10*time.Second) {
			t.Fatalf("daemon %d survived SIGKILL", pid)
		}
		close(stop)
		wg.Wait()
		n := 0
		ops.Range(func(k, v any) bool { n++; return true })
		if n < 8 {
			t.Logf("round %d: only %d of 8 workers got an operation through", round, n)
		}
		exec.Command("fusermount3", "-uz", mnt).Run()
		exec.Command("umount", "-l", mnt).Run()
		if sumFile(t, img) != orig {
			t.Fatalf("round %d: the image changed although nothing was committed", round)
		}
		run(t, "qemu-img", "check", img)
		mustOffvm(t, "check", img)
	}
	// the dead daemons' sockets and locks do not stand in the way
	mustOffvm(t, "mount", lib, mnt)
	must(t, os.WriteFile(filepath.Join(mnt, "vm.qcow2", "p1", "final.txt"), []byte("after three kills\n"), 0o644))
	mustOffvm(t, "unmount", mnt)
	run(t, "qemu-img", "check", img)
	out := filepath.Join(t.TempDir(), "out.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, out)
	part := extractPart(t, out, partOffsets(t, out)[0], 64)
	if b, err := exec.Command("ntfscat", part, "final.txt").Output(); err != nil || string(b) != "after three kills\n" {
		t.Fatalf("ntfscat final.txt: %q, %v", b, err)
	}
	run(t, "ntfsresize", "--info", "--force", "--no-progress-bar", part)
}
