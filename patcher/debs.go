package patcher

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/offvm/offvm/debpkg"
	"github.com/offvm/offvm/fs"
	"github.com/offvm/offvm/mount"
)

// A bundle with debs/ is applied by the host's dpkg against the guest's
// own tree, reached through a private offvm FUSE mount of the image: the
// same overlay as every other change, so the packages, the bundle's files
// and the record are one commit, and a failure anywhere (a failing
// maintainer script, a conflict, a missing dependency, a foreign
// architecture) drops the overlay and leaves the image byte-identical.

// applyDebs applies (or with DryRun plans) a bundle that holds packages.
func applyDebs(image string, b *Bundle, opts Options) Result {
	steps, part, res, done := planDebs(image, b, opts)
	if done {
		return res
	}
	if err := debpkg.HostHasDpkg(); err != nil {
		return failed(image, err)
	}
	return installDebs(image, b, opts, steps, part)
}

// planDebs settles the target (already applied, not applicable), reads its
// dpkg database and compares the bundle's packages with it. With DryRun it
// also plans the bundle's files, and the result is final.
func planDebs(image string, b *Bundle, opts Options) ([]debpkg.Step, string, Result, bool) {
	im, err := mount.Open(image, mount.Options{ReadOnly: true})
	if err != nil {
		return nil, "", failed(image, err), true
	}
	closeIm := sync.OnceValue(im.Close)
	defer closeIm()
	t, res, done := settle(image, imageTarget(im, true), b)
	if done {
		return nil, "", res, true
	}
	steps, err := guestSteps(t, b)
	if err != nil {
		return nil, "", failed(image, err), true
	}
	res.Changes = stepChanges(steps)
	if len(debpkg.Pending(steps)) == 0 && len(b.Files) == 0 && len(b.Deletes) == 0 && len(b.Registry) == 0 {
		res.Status, res.Reason = AlreadyApplied, "every package is installed at this or a newer version"
		return nil, "", res, true
	}
	if !opts.DryRun {
		if ok, why := im.WouldBeWritable(); !ok || opts.ReadOnlyReason != "" {
			return nil, "", failed(image, fmt.Errorf("cannot write: %s", firstOf(opts.ReadOnlyReason, why))), true
		}
		return steps, t.os.SystemPartition, res, false
	}
	p, err := t.plan(b)
	if err != nil {
		return nil, "", failed(image, err), true
	}
	if pending := debpkg.Pending(steps); len(pending) > 0 && debpkg.HostHasDpkg() == nil {
		closeIm() // the simulation opens the image itself
		sim, err := simulate(image, t.os.SystemPartition, opts, pending)
		if err != nil {
			return nil, "", failed(image, err), true
		}
		for _, l := range sim {
			res.Changes = append(res.Changes, Change{Action: "dpkg", Path: l})
		}
	}
	res.Status = WouldApply
	res.Changes = append(res.Changes, p.Changes...)
	res.Changes = append(res.Changes, t.recordChange(b.ID))
	res.FilesUnchanged, res.ValuesUnchanged = p.FilesUnchanged, p.ValuesUnchanged
	return steps, "", res, true
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// guestSteps reads the guest's dpkg status and plans each package.
func guestSteps(t *target, b *Bundle) ([]debpkg.Step, error) {
	if t.family() != "linux" {
		return nil, fmt.Errorf("packages need a Linux guest")
	}
	v, err := t.rootVolume()
	if err != nil {
		return nil, err
	}
	st, err := readSmall(v.fs, strings.Split(debpkg.StatusFile, "/"), 64<<20)
	if isNotExist(err) {
		return nil, fmt.Errorf("no dpkg database (/%s): not a Debian-family guest", debpkg.StatusFile)
	}
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", debpkg.StatusFile, err)
	}
	return debpkg.Plan(b.Debs, debpkg.ParseStatus(st))
}

func stepChanges(steps []debpkg.Step) []Change {
	var out []Change
	for _, s := range steps {
		c := Change{Action: s.Action, Path: s.Deb.Package, Detail: s.Deb.Version}
		switch s.Action {
		case debpkg.Upgrade:
			c.Detail = s.From + " -> " + s.Deb.Version
		case debpkg.Already:
			c.Detail = s.Deb.Version + " (installed: " + s.From + ")"
		}
		out = append(out, c)
	}
	return out
}

// installDebs mounts the image privately, runs dpkg in its root tree,
// then writes the bundle's files and the record through the same overlay
// and commits once.
func installDebs(image string, b *Bundle, opts Options, steps []debpkg.Step, part string) Result {
	im, dpkgErr, err := dpkgInTree(image, part, opts, debpkg.Pending(steps))
	if err != nil {
		return failed(image, err)
	}
	defer im.Close() // without Commit this drops every change
	if dpkgErr != nil {
		return failed(image, dpkgErr)
	}
	t := imageTarget(im, false)
	p, err := t.plan(b)
	if err != nil {
		return failed(image, err)
	}
	p.Changes = append(stepChanges(steps), p.Changes...)
	when, err := commitPlan(im, t, b, p, opts)
	if err != nil {
		return failed(image, err)
	}
	slog.Info("packages applied", "image", image, "bundle", b.ID, "packages", len(debpkg.Pending(steps)))
	return Result{Image: image, Status: Applied, When: when.UTC().Format(time.RFC3339), Changes: p.Changes,
		FilesUnchanged: p.FilesUnchanged, ValuesUnchanged: p.ValuesUnchanged}
}

// simulate runs dpkg --dry-run on the image's tree, on a private mount
// whose overlay is dropped afterwards (dpkg takes its lock even to
// simulate): the image is not written.
func simulate(image, part string, opts Options, debs []debpkg.Deb) ([]string, error) {
	var lines []string
	im, simErr, err := inTree(image, opts, func(root string) error {
		var err error
		lines, err = debpkg.Simulate(filepath.Join(root, part), debs)
		return err
	})
	if err != nil {
		return nil, err
	}
	im.Close() // drops whatever dpkg touched
	return lines, simErr
}

// dpkgInTree runs dpkg on the image's root partition part in a private
// tree (inTree).
func dpkgInTree(image, part string, opts Options, debs []debpkg.Deb) (*mount.Image, error, error) {
	return inTree(image, opts, func(root string) error {
		out, err := debpkg.Apply(filepath.Join(root, part), debs)
		slog.Debug("dpkg output", "image", image, "output", out)
		return err
	})
}

// inTree serves the image alone on a private mount point, runs fn with
// the image's directory there, and unmounts. It returns the image, still
// open with fn's changes in its overlay, and fn's error apart from the
// others.
func inTree(image string, opts Options, fn func(dir string) error) (*mount.Image, error, error) {
	mnt, err := os.MkdirTemp(opts.TmpDir, "offvm-dpkg-")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(mnt)
	tree := fs.NewTree(fs.Options{Library: image})
	srv, err := fs.Mount(mnt, tree, fs.MountOptions{})
	if err != nil {
		return nil, nil, err
	}
	dpkgErr := fn(filepath.Join(mnt, filepath.Base(image)))
	if err := srv.Unmount(); err != nil {
		// something the scripts started still holds the tree: nothing of
		// this run can be trusted, so it is dropped
		unix.Unmount(mnt, unix.MNT_DETACH)
		srv.Wait()
		closeAll(tree.Images())
		return nil, nil, fmt.Errorf("unmounting the private tree after dpkg: %w", err)
	}
	srv.Wait()
	ims := tree.Images()
	if len(ims) != 1 {
		closeAll(ims)
		return nil, nil, fmt.Errorf("the private tree opened %d images, want 1", len(ims))
	}
	return ims[0], dpkgErr, nil
}

func closeAll(ims []*mount.Image) {
	for _, im := range ims {
		im.Close()
	}
}
