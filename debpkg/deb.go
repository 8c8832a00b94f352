// Package debpkg applies Debian packages (.deb) to an offline Linux guest
// with the host's own dpkg, run against the guest's tree (--root): dpkg
// is the oracle of what an install does, and the guest's dpkg database
// ends up as if apt had installed them. It reads the bundle's debs/ and the
// guest's dpkg status, plans which packages change, and runs dpkg with the
// guest's maintainer scripts chrooted into the guest, /dev, /proc and /sys
// provided and service starts denied.
package debpkg

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is the folder of a patch bundle that holds the packages.
const Dir = "debs"

// ErrDpkg marks a failure that dpkg itself reported.
var ErrDpkg = errors.New("dpkg failed")

// Deb is one package file of a bundle.
type Deb struct {
	Path    string
	Package string
	Version string
	Arch    string
}

func (d Deb) String() string { return d.Package + " " + d.Version + " (" + d.Arch + ")" }

// Load reads the .deb files of bundle/debs, in name order; none when the
// folder is absent. Each is read by dpkg-deb, which refuses what is not a
// Debian package.
func Load(bundle string) ([]Deb, error) {
	dir := filepath.Join(bundle, Dir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var debs []Deb
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".deb") || !e.Type().IsRegular() {
			return nil, fmt.Errorf("bundle %s: %s: only regular .deb files belong in %s/", bundle, p, Dir)
		}
		d, err := Inspect(p)
		if err != nil {
			return nil, err
		}
		debs = append(debs, d)
	}
	sort.Slice(debs, func(i, j int) bool { return debs[i].Path < debs[j].Path })
	return debs, checkDistinct(debs)
}

// Inspect reads a package's name, version and architecture.
func Inspect(path string) (Deb, error) {
	out, err := run("dpkg-deb", "--show", "--showformat=${Package}\t${Version}\t${Architecture}\n", path)
	if err != nil {
		return Deb{}, fmt.Errorf("%s: not a readable Debian package: %w", path, err)
	}
	f := strings.Split(strings.TrimSpace(out), "\t")
	if len(f) != 3 || f[0] == "" || f[1] == "" {
		return Deb{}, fmt.Errorf("%s: dpkg-deb gave no package name and version", path)
	}
	return Deb{Path: path, Package: f[0], Version: f[1], Arch: f[2]}, nil
}

func checkDistinct(debs []Deb) error {
	seen := map[string]string{}
	for _, d := range debs {
		if prev, ok := seen[d.Package]; ok {
			return fmt.Errorf("%s and %s are both package %s", prev, d.Path, d.Package)
		}
		seen[d.Package] = d.Path
	}
	return nil
}

// run runs a host command and returns its standard output; the error
// carries its standard error.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return out.String(), fmt.Errorf("%s: %w", name, err)
		}
		return out.String(), fmt.Errorf("%s: %s", name, msg)
	}
	return out.String(), nil
}
