// Package patcher is `offvm patch`: it loads an update bundle (patch.toml,
// files/, registry/*.reg), decides where it applies, plans what differs,
// and writes each image as one transaction through the ordinary volume and
// registry operations of package mount. All of a bundle or nothing.
package patcher

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/offvm/offvm/debpkg"
)

// ErrBundle marks a bundle refused before anything was written.
var ErrBundle = errors.New("invalid patch bundle")

// Bundle is a loaded, validated patch bundle.
type Bundle struct {
	Dir     string
	ID      string
	Title   string
	Applies Rules
	// Deletes are the paths of patch.toml's delete list.
	Deletes []Target
	// Files are the files and directories under files/, parents first.
	Files []File
	// Registry are the .reg files of registry/, in name order.
	Registry []RegFile
	// Debs are the Debian packages of debs/, applied with the host's dpkg
	// (debs.go).
	Debs []debpkg.Deb
	// Updates are the Microsoft update packages of updates/, staged in the
	// bundle's transaction (updates.go); updates is what the stager read
	// of them.
	Updates []string
	updates any
}

// Rules say where a bundle applies ([applies] in patch.toml). Empty fields
// match everything.
type Rules struct {
	OS       string `toml:"os"`
	Product  string `toml:"product"`
	MinBuild *int   `toml:"min_build"`
	MaxBuild *int   `toml:"max_build"`
	Arch     string `toml:"arch"`
	// Distribution is os-release's ID ("debian", "ubuntu"); MinVersion
	// its lowest VERSION_ID ("12").
	Distribution string `toml:"distribution"`
	MinVersion   string `toml:"min_version"`
}

// Target names a place inside an image: a volume (drive letter or
// partition number) and a path on it, as components.
type Target struct {
	Drive string // "C", or "" when Part is used
	Part  int    // partition number when Drive is ""
	Path  []string
}

// File is one entry under files/.
type File struct {
	Target
	Src   string // the file in the bundle
	IsDir bool
	Size  int64
}

// RegFile is one parsed .reg file.
type RegFile struct {
	Name string
	Ops  []RegOp
}

// manifest is patch.toml as written.
type manifest struct {
	ID      string   `toml:"id"`
	Title   string   `toml:"title"`
	Delete  []string `toml:"delete"`
	Applies Rules    `toml:"applies"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// LoadBundle reads and checks the bundle in dir. Anything that would leave
// its volume (.., links, absolute paths, names Windows cannot hold on a
// drive letter) refuses the whole bundle, before any image is opened.
func LoadBundle(dir string) (*Bundle, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Dir: dir, ID: m.ID, Title: m.Title, Applies: m.Applies}
	for _, d := range m.Delete {
		t, err := parseWinPath(d)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: patch.toml: delete %q: %v: %w", dir, d, err, ErrBundle)
		}
		b.Deletes = append(b.Deletes, t)
	}
	if b.Files, err = walkFiles(dir); err != nil {
		return nil, err
	}
	if b.Registry, err = loadRegistry(dir); err != nil {
		return nil, err
	}
	if b.Debs, err = debpkg.Load(dir); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrBundle)
	}
	if len(b.Debs) > 0 && !strings.EqualFold(m.Applies.OS, "linux") {
		return nil, fmt.Errorf("bundle %s: debs/ needs [applies] os = \"linux\" in patch.toml: %w", dir, ErrBundle)
	}
	if err := loadUpdates(b, m); err != nil {
		return nil, err
	}
	if err := checkOverlap(b); err != nil {
		return nil, fmt.Errorf("bundle %s: %v: %w", dir, err, ErrBundle)
	}
	return b, nil
}

func readManifest(dir string) (manifest, error) {
	var m manifest
	p := filepath.Join(dir, "patch.toml")
	if err := regularFile(p); err != nil {
		return m, fmt.Errorf("bundle %s: %v: %w", dir, err, ErrBundle)
	}
	md, err := toml.DecodeFile(p, &m)
	if err != nil {
		return m, fmt.Errorf("bundle %s: patch.toml: %v: %w", dir, err, ErrBundle)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return m, fmt.Errorf("bundle %s: patch.toml: unknown key %q: %w", dir, und[0].String(), ErrBundle)
	}
	if !idPattern.MatchString(m.ID) {
		return m, fmt.Errorf("bundle %s: patch.toml: id %q must be 1-128 letters, digits, '.', '_', '+' or '-': %w", dir, m.ID, ErrBundle)
	}
	if m.Title == "" {
		m.Title = m.ID
	}
	return m, checkRules(dir, m.Applies)
}

func checkRules(dir string, r Rules) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("bundle %s: patch.toml: [applies] %s: %w", dir, fmt.Sprintf(format, a...), ErrBundle)
	}
	switch strings.ToLower(r.OS) {
	case "", "windows", "linux":
	default:
		return bad("os %q: want \"windows\" or \"linux\"", r.OS)
	}
	if _, err := path.Match(r.Product, ""); err != nil {
		return bad("product %q: %v", r.Product, err)
	}
	if r.MinBuild != nil && r.MaxBuild != nil && *r.MinBuild > *r.MaxBuild {
		return bad("min_build %d is above max_build %d", *r.MinBuild, *r.MaxBuild)
	}
	return nil
}

// regularFile refuses links and special files where the bundle needs a file.
func regularFile(p string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (links are refused)", p)
	}
	return nil
}

// checkOverlap refuses a bundle that both deletes a path and brings a
// file at or below it: the outcome would depend on order.
func checkOverlap(b *Bundle) error {
	for _, d := range b.Deletes {
		for _, f := range b.Files {
			if !sameVolume(d, f.Target) || len(f.Path) < len(d.Path) {
				continue
			}
			if strings.EqualFold(strings.Join(f.Path[:len(d.Path)], "/"), strings.Join(d.Path, "/")) {
				return fmt.Errorf("%s is deleted and also brought by files/", d)
			}
		}
	}
	return nil
}

func sameVolume(a, b Target) bool {
	return strings.EqualFold(a.Drive, b.Drive) && a.Part == b.Part
}

// String spells a target as the user would: C:\Dir\File or p1:/dir/file.
func (t Target) String() string {
	if t.Drive != "" {
		return t.Drive + `:\` + strings.Join(t.Path, `\`)
	}
	return fmt.Sprintf("p%d:/%s", t.Part, strings.Join(t.Path, "/"))
}
