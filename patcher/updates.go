package patcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/offvm/offvm/mount"
)

// A bundle's updates/ folder holds Microsoft update packages (.msu, .cab).
// They are staged as `offvm updates stage` stages them (the packages an
// image needs copied in, the first-boot service registered, the Staged
// records written), but inside the bundle's own transaction: the bundle's
// files, its .reg files, the staged packages and the record are one
// commit, and a failure anywhere leaves the image as it was. Package
// updates does the staging; it builds on patcher, so it registers itself
// here (SetUpdateStager) rather than being imported.

// UpdatesDir is the bundle folder of update packages.
const UpdatesDir = "updates"

// UpdateStager stages update packages for patcher.
type UpdateStager interface {
	// OpenUpdates reads every package, refusing the bundle when one is
	// damaged (before any image is opened); what it returns is handed
	// back to StageInto.
	OpenUpdates(paths []string) (any, error)
	// StageInto lays out in dir, as a bundle's files/ and registry/, the
	// staging of the packages the image needs, and says per package what
	// it decided.
	StageInto(im *mount.Image, pkgs any, dir string, now time.Time) ([]Change, error)
}

var updateStager UpdateStager

// SetUpdateStager registers the stager of updates/ folders.
func SetUpdateStager(s UpdateStager) { updateStager = s }

// loadUpdates lists and reads updates/: regular .msu and .cab files only.
func loadUpdates(b *Bundle, m manifest) error {
	dir := filepath.Join(b.Dir, UpdatesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.Dir, err)
	}
	for _, e := range ents {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.Type().IsRegular() || (ext != ".msu" && ext != ".cab") {
			return fmt.Errorf("bundle %s: %s/%s: only regular .msu and .cab files belong here: %w", b.Dir, UpdatesDir, e.Name(), ErrBundle)
		}
		b.Updates = append(b.Updates, filepath.Join(dir, e.Name()))
	}
	if len(b.Updates) == 0 {
		return nil
	}
	sort.Strings(b.Updates)
	if !strings.EqualFold(m.Applies.OS, "windows") {
		return fmt.Errorf("bundle %s: %s/ needs [applies] os = \"windows\" in patch.toml: %w", b.Dir, UpdatesDir, ErrBundle)
	}
	if updateStager == nil {
		return fmt.Errorf("bundle %s: %s/: this program cannot stage update packages: %w", b.Dir, UpdatesDir, ErrBundle)
	}
	if b.updates, err = updateStager.OpenUpdates(b.Updates); err != nil {
		return fmt.Errorf("bundle %s: %w: %w", b.Dir, err, ErrBundle)
	}
	return nil
}

// withUpdates returns the bundle for one image with the staging of the
// update packages it needs added to its files and registry, the changes
// that say what was decided per package, and a cleanup of the staging
// folder (to call once the image is committed or dropped).
func withUpdates(im *mount.Image, b *Bundle, opts Options) (*Bundle, []Change, func(), error) {
	nothing := func() {}
	if len(b.Updates) == 0 {
		return b, nil, nothing, nil
	}
	dir, err := os.MkdirTemp(opts.TmpDir, "offvm-bundle-updates-")
	if err != nil {
		return nil, nil, nothing, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	decided, err := updateStager.StageInto(im, b.updates, dir, opts.now())
	if err != nil {
		cleanup()
		return nil, nil, nothing, fmt.Errorf("%s/: %w", UpdatesDir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "patch.toml")); err != nil {
		return b, decided, cleanup, nil // nothing this image needs
	}
	gen, err := LoadBundle(dir)
	if err != nil {
		cleanup()
		return nil, nil, nothing, fmt.Errorf("%s/: staging: %w", UpdatesDir, err)
	}
	merged := *b
	merged.Files = append(append([]File(nil), b.Files...), gen.Files...)
	merged.Registry = append(append([]RegFile(nil), b.Registry...), gen.Registry...)
	if err := checkOverlap(&merged); err != nil {
		cleanup()
		return nil, nil, nothing, fmt.Errorf("%s/: the staged packages clash with the bundle's own files: %w", UpdatesDir, err)
	}
	return &merged, decided, cleanup, nil
}

// MountRoot is the mount point of the offvm tree that holds dir (an
// image's directory in it): what `offvm unmount` takes.
func MountRoot(dir string) string {
	for d := filepath.Clean(dir); ; {
		up := filepath.Dir(d)
		if up == d || !onFUSE(up) {
			return d
		}
		d = up
	}
}
