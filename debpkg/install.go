package debpkg

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// Apply installs debs into the guest tree at root with the host's dpkg:
// unpack and configure in one dpkg --install (dpkg orders them by their
// dependencies), then the triggers still pending. The guest's maintainer
// scripts run chrooted in root, as dpkg --root does. Nothing is
// downloaded: a dependency the guest does not satisfy fails with dpkg's
// own message. On error the tree is left as dpkg left it: the caller
// discards it whole.
func Apply(root string, debs []Deb) (string, error) {
	if len(debs) == 0 {
		return "", nil
	}
	g, err := prepare(root)
	if err != nil {
		return "", err
	}
	log, err := runDpkg(root, debs)
	if uerr := g.undo(); err == nil && uerr != nil {
		err = fmt.Errorf("cleaning up the guest after dpkg: %w", uerr)
	}
	return log, err
}

// dpkgScript runs in the dpkg process's own mount namespace: it binds
// the host's /dev, /proc and /sys into the guest (gone with the
// namespace), installs, then configures what is pending (triggers).
const dpkgScript = `set -e
root=$1; shift
mount --bind /dev "$root/dev"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind /sys "$root/sys"
dpkg --root="$root" --force-unsafe-io --install "$@"
dpkg --root="$root" --force-unsafe-io --configure --pending
`

func runDpkg(root string, debs []Deb) (string, error) {
	args := []string{"-c", dpkgScript, "offvm-dpkg", root}
	for _, d := range debs {
		args = append(args, d.Path)
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
		"LC_ALL=C", "HOME=/root", "TERM=dumb",
	}
	// A private mount namespace (Go makes / private in it) and a PID
	// namespace whose init is the script, killed with offvm: the kernel
	// then kills dpkg and every maintainer script with it, and the mounts
	// go with the namespace. A killed offvm leaves nothing running and
	// nothing mounted in the guest's tree.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	var log, stderr bytes.Buffer
	cmd.Stdout = &log
	cmd.Stderr = &stderr
	slog.Debug("dpkg", "root", root, "debs", len(debs))
	runtime.LockOSThread() // Pdeathsig follows the thread that forked
	err := cmd.Run()
	runtime.UnlockOSThread()
	log.Write(stderr.Bytes())
	if err != nil {
		return log.String(), fmt.Errorf("%s: %w", reason(stderr.String(), err), ErrDpkg)
	}
	return log.String(), nil
}

// reason is dpkg's own account of a failure: its "dpkg: ..." lines and
// their indented continuations, on one line.
func reason(stderr string, err error) string {
	var parts []string
	keep := false
	for _, l := range strings.Split(stderr, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "dpkg: "):
			keep = !strings.HasPrefix(l, "dpkg: warning")
			if keep {
				parts = append(parts, strings.TrimPrefix(t, "dpkg: "))
			}
		case keep && t != "" && (l[0] == ' ' || l[0] == '\t'):
			parts = append(parts, t)
		default:
			keep = false
		}
	}
	if len(parts) == 0 {
		if s := strings.TrimSpace(stderr); s != "" {
			return s
		}
		return err.Error()
	}
	return strings.Join(parts, " ")
}

// HostHasDpkg says whether this host can apply Debian packages.
func HostHasDpkg() error {
	for _, t := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("applying .deb packages needs the host's %s: %w", t, err)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("applying .deb packages needs root (dpkg --root chroots into the guest)")
	}
	return nil
}

// Simulate asks dpkg what installing debs into the guest tree at root
// would do (dpkg --dry-run: nothing is unpacked and no script runs) and
// returns what it printed, one step a line.
func Simulate(root string, debs []Deb) ([]string, error) {
	args := []string{"--root=" + root, "--dry-run", "--install"}
	for _, d := range debs {
		args = append(args, d.Path)
	}
	cmd := exec.Command("dpkg", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dpkg --dry-run: %s: %w", reason(stderr.String(), err), ErrDpkg)
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
