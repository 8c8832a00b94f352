// Package tests drives the built offvm binary end to end: real images made
// by real tools, mounted through real FUSE, checked against what the tools
// put there.
package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offvm/offvm/internal/testutil"
)

var offvm string // the binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "offvm-e2e-")
	if err != nil {
		panic(err)
	}
	offvm = filepath.Join(dir, "offvm")
	// the inventory cache of the binary under test lives and dies with it
	os.Setenv("OFFVM_CACHE_DIR", filepath.Join(dir, "cache"))
	build := exec.Command("go", "build", "-tags", "offvmfault", "-o", offvm, "./cmd/offvm")
	build.Dir = testutil.ModuleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building offvm: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	removeDebGuest()
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	out, err string
	code     int
}

func runOffvm(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(offvm, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running offvm %v: %v", args, err)
	}
	return result{o.String(), e.String(), code}
}

// mustOffvm runs offvm and fails the test unless it exits 0.
func mustOffvm(t testing.TB, args ...string) string {
	t.Helper()
	r := runOffvm(t, args...)
	if r.code != 0 {
		t.Fatalf("offvm %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// mountLib mounts a library and returns the mountpoint; the mount is
// undone (discarding changes) when the test ends, whatever happened.
func mountLib(t testing.TB, lib string, flags ...string) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "fusermount3", "fuse3")
	mnt := t.TempDir()
	args := append(append([]string{"mount"}, flags...), lib, mnt)
	mustOffvm(t, args...)
	t.Cleanup(func() {
		if isMounted(mnt) {
			if r := runOffvm(t, "unmount", "--discard", mnt); r.code != 0 {
				t.Logf("unmount --discard %s: %s", mnt, r.err)
				exec.Command("fusermount3", "-uz", mnt).Run()
				exec.Command("umount", "-l", mnt).Run()
			}
		}
	})
	return mnt
}

func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	abs, _ := filepath.Abs(dir)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[1] == abs {
			return true
		}
	}
	return false
}

// run runs a tool and fails the test with its output when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return testutil.Run(t, name, args...)
}

// waitGone waits for a daemon's pid to exit.
func waitGone(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
