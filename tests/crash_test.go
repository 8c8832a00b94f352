package tests

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashCase prepares a qcow2 image holding a FAT volume, mounts it with
// extra environment for the daemon, makes a set of changes, and returns
// what a check of the result needs.
type crashCase struct {
	img, orig string
	origSum   [32]byte
}

func newCrashCase(t *testing.T, lib string) *crashCase {
	t.Helper()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "old.bin"), 200000)
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 48, typ: "U", fs: makeFAT(t, src, 48, 32, "DATA")}})
	img := filepath.Join(lib, "vm.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)
	return &crashCase{img: img, origSum: sumFile(t, img)}
}

// edit makes changes whose every part a check can see.
func edit(t *testing.T, mnt string) {
	t.Helper()
	p := filepath.Join(mnt, "vm.qcow2", "p1")
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(p, "new", fmt.Sprintf("f%02d.bin", i)), 50000+i)
	}
	must(t, os.Remove(filepath.Join(p, "old.bin")))
}

// verify checks the image is either untouched or holds every change, and
// that qemu-img and fsck.fat find nothing wrong.
func (c *crashCase) verify(t *testing.T, label string) string {
	t.Helper()
	if r := runOffvm(t, "check", c.img); r.code != 0 {
		t.Fatalf("%s: offvm check: exit %d %s %s", label, r.code, r.out, r.err)
	}
	if out, err := exec.Command("qemu-img", "check", c.img).CombinedOutput(); err != nil {
		t.Fatalf("%s: qemu-img check: %v\n%s", label, err, out)
	}
	if sumFile(t, c.img) == c.origSum {
		return "old"
	}
	raw := filepath.Join(t.TempDir(), "check.raw")
	run(t, "qemu-img", "convert", "-O", "raw", c.img, raw)
	part := extractPart(t, raw, partOffsets(t, raw)[0], 48)
	if out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
		t.Fatalf("%s: fsck.fat -n: %v\n%s", label, err, out)
	}
	listing := run(t, "mdir", "-/", "-b", "-i", part, "::/")
	n := strings.Count(listing, "::/new/f")
	if n != 20 || strings.Contains(listing, "old.bin") {
		t.Fatalf("%s: a partial commit: %d of 20 new files, old.bin present %v", label, n, strings.Contains(listing, "old.bin"))
	}
	return "new"
}

func cleanupMount(mnt string) {
	exec.Command("fusermount3", "-uz", mnt).Run()
	exec.Command("umount", "-l", mnt).Run()
}

// TestCrashAtEveryPoint kills the daemon (SIGKILL, as a power cut) at
// each fault point of a commit; the next offvm command finds the image
// either as it was or with every change.
func TestCrashAtEveryPoint(t *testing.T) {
	points := []string{"commit-staged", "journal-partial", "journal-written", "mid-apply", "applied", "before-undo"}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			lib := t.TempDir()
			c := newCrashCase(t, lib)
			mnt := t.TempDir()
			pidFile := filepath.Join(t.TempDir(), "pid")
			cmd := exec.Command(offvm, "mount", "--pid-file", pidFile, lib, mnt)
			cmd.Env = append(os.Environ(), "OFFVM_FAULT="+point)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mount: %v\n%s", err, out)
			}
			defer cleanupMount(mnt)
			edit(t, mnt)
			r := runOffvm(t, "unmount", mnt)
			if r.code == 0 {
				t.Fatalf("unmount succeeded although the daemon was killed at %s", point)
			}
			cleanupMount(mnt)
			b, _ := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid == 0 || !waitGone(pid, 10*time.Second) { // its locks go with it
				t.Fatalf("daemon %d still alive after its fault point", pid)
			}
			state := c.verify(t, point)
			// an undo journal: only a journal marked applied is new
			want := "old"
			if point == "before-undo" {
				want = "new"
			}
			if state != want {
				t.Errorf("after a crash at %s the image is %s, want %s", point, state, want)
			}
		})
	}
}

// TestCrashRandomKill kills the daemon with SIGKILL after a random delay
// into the commit, several times.
func TestCrashRandomKill(t *testing.T) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		lib := t.TempDir()
		c := newCrashCase(t, lib)
		pidFile := filepath.Join(t.TempDir(), "pid")
		mnt := mountLib(t, lib, "--pid-file", pidFile)
		edit(t, mnt)
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		un := exec.Command(offvm, "unmount", mnt)
		if err := un.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Intn(60)) * time.Millisecond
		time.Sleep(delay)
		syscall.Kill(pid, syscall.SIGKILL)
		un.Wait()
		cleanupMount(mnt)
		if !waitGone(pid, 10*time.Second) { // its locks go with it
			t.Fatalf("daemon %d survived SIGKILL", pid)
		}
		seen[c.verify(t, fmt.Sprintf("kill after %v", delay))]++
	}
	t.Logf("outcomes: %v", seen)
}
