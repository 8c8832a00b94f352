package debpkg

import (
	"fmt"
	"os/exec"
)

// What a package does to a guest.
const (
	Install = "install"
	Upgrade = "upgrade"
	Already = "already applied" // the same or a newer version is installed
)

// Step is one package of the plan.
type Step struct {
	Deb    Deb
	Action string
	From   string // the installed version an upgrade replaces
}

func (s Step) String() string {
	switch s.Action {
	case Upgrade:
		return fmt.Sprintf("upgrade %s %s -> %s", s.Deb.Package, s.From, s.Deb.Version)
	case Already:
		return fmt.Sprintf("already applied %s %s (installed: %s)", s.Deb.Package, s.Deb.Version, s.From)
	}
	return fmt.Sprintf("install %s %s", s.Deb.Package, s.Deb.Version)
}

// Plan compares each package with what the guest has installed.
// Versions are compared by the host's dpkg, as apt would.
func Plan(debs []Deb, inst map[string]Installed) ([]Step, error) {
	steps := make([]Step, 0, len(debs))
	for _, d := range debs {
		cur, ok := Lookup(inst, d.Package, d.Arch)
		if !ok {
			steps = append(steps, Step{Deb: d, Action: Install})
			continue
		}
		newer, err := Newer(d.Version, cur.Version)
		if err != nil {
			return nil, err
		}
		act := Already
		if newer {
			act = Upgrade
		}
		steps = append(steps, Step{Deb: d, Action: act, From: cur.Version})
	}
	return steps, nil
}

// Pending are the steps that change the guest.
func Pending(steps []Step) []Deb {
	var out []Deb
	for _, s := range steps {
		if s.Action != Already {
			out = append(out, s.Deb)
		}
	}
	return out
}

// Newer reports whether version a is greater than b, by dpkg's rules.
func Newer(a, b string) (bool, error) {
	err := exec.Command("dpkg", "--compare-versions", a, "gt", b).Run()
	if err == nil {
		return true, nil
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return false, nil
	}
	return false, fmt.Errorf("dpkg --compare-versions %q gt %q: %w", a, b, err)
}
