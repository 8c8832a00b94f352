package debpkg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// policyRC denies every service start (invoke-rc.d asks it): an offline
// guest's services must not start on the host.
const (
	policyRC       = "usr/sbin/policy-rc.d"
	policyRCScript = "#!/bin/sh\n# offvm: no service starts while the guest is updated offline\nexit 101\n"
	savedSuffix    = ".offvm-saved"
)

// guestEnv is what the maintainer scripts run with: the guest's root as
// their chroot, the host's /dev, /proc and /sys bound in for the duration
// (mountDirs: mounted by the dpkg process itself, in a mount namespace of
// its own, so that they vanish with it however it ends, even when offvm is
// killed), and service starts denied. Undo removes every trace of it.
type guestEnv struct {
	root   string
	made   []string // mount points created because the guest had none
	policy bool     // policy-rc.d was written (an existing one saved)
	saved  bool
}

// mountDirs are the host's file systems the maintainer scripts get.
var mountDirs = []string{"dev", "proc", "sys"}

func prepare(root string) (*guestEnv, error) {
	g := &guestEnv{root: root}
	for _, dir := range mountDirs {
		target := filepath.Join(root, dir)
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(target, 0o755); err != nil {
				g.undo()
				return nil, fmt.Errorf("guest /%s: %w", dir, err)
			}
			g.made = append(g.made, target)
		}
	}
	if err := g.denyServices(); err != nil {
		g.undo()
		return nil, err
	}
	return g, nil
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

// undo removes what prepare added, last first; it reports the first
// thing it could not undo.
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
	for i := len(g.made) - 1; i >= 0; i-- {
		keep(os.Remove(g.made[i]))
	}
	g.made = nil
	return first
}
