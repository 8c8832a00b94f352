// Package testutil holds what many tests need: the shared corpus, real tools
// as oracles, and running commands with their output in the failure message.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// ModuleRoot is the directory holding go.mod.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Corpus returns the path of a file in ../shared/corpus, skipping the test
// with a message when the shared folder is absent (a user's fresh clone).
func Corpus(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(ModuleRoot(), "..", "shared", "corpus", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus file %s absent (../shared is not beside this clone): %v", rel, err)
	}
	return p
}

// RequireTool skips the test when a real tool is missing, naming the
// Debian package that provides it. `make test` installs them all.
func RequireTool(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (apt-get install %s; make test installs it)", tool, pkg)
	}
}

// Run runs a command and fails the test with its output when it fails.
// Commands that pick a free loop device are run one at a time on the host.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	if takesLoopDevice(name, args) {
		defer lockLoopDevices(t)()
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// RequireRoot skips tests that need root (loop devices, mounts).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (make test runs as root)")
	}
}

// takesLoopDevice: `mount -o loop` and `losetup -f` find a free loop device
// and then bind it in two steps; two test processes (go test runs packages
// in parallel) can pick the same device, and the loser fails with "already
// mounted or mount point busy".
func takesLoopDevice(name string, args []string) bool {
	for i, a := range args {
		switch {
		case name == "mount" && a == "-o" && i+1 < len(args) && strings.Contains(args[i+1], "loop"):
			return true
		case name == "losetup" && (a == "-f" || a == "--find"):
			return true
		}
	}
	return false
}

// lockLoopDevices holds a host-wide lock (flock on a file in /run/lock)
// until the returned function is called.
func lockLoopDevices(t testing.TB) func() {
	f, err := os.OpenFile("/run/lock/offvm-test-loop.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Logf("loop-device lock: %v (going on without it)", err)
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Logf("loop-device lock: %v (going on without it)", err)
	}
	return func() { f.Close() }
}
