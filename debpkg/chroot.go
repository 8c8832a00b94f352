package debpkg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// policyRC denies every service start (invoke-rc.d asks it): an offline
// guest's services must not start on the host.
const (
	policyRC       = "usr/sbin/policy-rc.d"
	policyRCScript = "#!/bin/sh\n# offvm: no service starts while the guest is updated offline\nexit 101\n"
	savedSuffix    = ".offvm-saved"
)

// guestEnv is what the maintainer scripts run with: the guest's root as
// their chroot, the host's /dev, /proc and /sys bound in for the duration,
// and service starts denied. Undo removes every trace of it.
type guestEnv struct {
	root    string
	mounted []string
	made    []string // directories created for the mounts
	policy  bool     // policy-rc.d was written (an existing one saved)
	saved   bool
}

func prepare(root string) (*guestEnv, error) {
	g := &guestEnv{root: root}
	for _, m := range []struct{ dir, fstype, src string }{
		{"dev", "", "/dev"}, {"proc", "proc", "proc"}, {"sys", "", "/sys"},
	} {
		if err := g.mount(m.dir, m.fstype, m.src); err != nil {
			g.undo()
			return nil, err
		}
	}
	if err := g.denyServices(); err != nil {
		g.undo()
		return nil, err
	}
	return g, nil
}

func (g *guestEnv) mount(dir, fstype, src string) error {
	target := filepath.Join(g.root, dir)
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(target, 0o755); err != nil {
			return fmt.Errorf("guest /%s: %w", dir, err)
		}
		g.made = append(g.made, target)
	}
	var err error
	if fstype == "" {
		err = unix.Mount(src, target, "", unix.MS_BIND, "")
	} else {
		err = unix.Mount(src, target, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	if err != nil {
		return fmt.Errorf("mounting %s on guest /%s: %w", src, dir, err)
	}
	g.mounted = append(g.mounted, target)
	return nil
}

func (g *guestEnv) denyServices() error {
	p := filepath.Join(g.root, policyRC)
	if _, err := os.Lstat(p); err == nil {
		if err := os.Rename(p, p+savedSuffix); err != nil {
			return fmt.Errorf("guest /%s: %w", policyRC, err)
		}
		g.saved = true
	}
	if err := os.WriteFile(p, []byte(policyRCScript), 0o755); err != nil {
		return fmt.Errorf("guest /%s: %w", policyRC, err)
	}
	g.policy = true
	return os.Chmod(p, 0o755)
}

// undo unmounts and removes what prepare added, last first; it reports
// the first thing it could not undo.
func (g *guestEnv) undo() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if g.policy {
		p := filepath.Join(g.root, policyRC)
		keep(os.Remove(p))
		if g.saved {
			keep(os.Rename(p+savedSuffix, p))
		}
		g.policy = false
	}
	for i := len(g.mounted) - 1; i >= 0; i-- {
		if err := unix.Unmount(g.mounted[i], 0); err != nil {
			// a script left a process behind: detach now, it goes when
			// the process does
			keep(unix.Unmount(g.mounted[i], unix.MNT_DETACH))
		}
	}
	g.mounted = nil
	for i := len(g.made) - 1; i >= 0; i-- {
		keep(os.Remove(g.made[i]))
	}
	g.made = nil
	return first
}
