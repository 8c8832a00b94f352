package patcher

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
)

// The outcomes of one target.
const (
	Applied        = "applied"
	AlreadyApplied = "already applied"
	NotApplicable  = "not applicable"
	Failed         = "failed"
	WouldApply     = "would apply" // --dry-run
	NotApplied     = "not applied" // status
)

// Options say how Apply runs.
type Options struct {
	// DryRun plans and reports, and opens the image read-only.
	DryRun bool
	// Now is the time recorded as Applied (time.Now when nil).
	Now func() time.Time
	// TmpDir holds the overlay of changed blocks ("" = os.TempDir()).
	TmpDir string
	// ReadOnlyReason, when set, refuses writing the image for this reason
	// (it is another image's parent).
	ReadOnlyReason string
}

// Result is what happened to one target.
type Result struct {
	Image  string `json:"image"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// When is the time the bundle was applied (applied, already applied,
	// and status).
	When string `json:"applied_at,omitempty"`
	// Changes are what was (or, for --dry-run, would be) changed.
	Changes         []Change `json:"changes,omitempty"`
	FilesUnchanged  int      `json:"files_unchanged,omitempty"`
	ValuesUnchanged int      `json:"values_unchanged,omitempty"`
	// Mount is the image's directory in a mounted tree the dry run read
	// (a bundle is never applied through a mount: mounted.go).
	Mount string `json:"mount,omitempty"`
}

// Failed reports whether the target failed.
func (r Result) Failed() bool { return r.Status == Failed }

func failed(image string, err error) Result {
	return Result{Image: image, Status: Failed, Reason: err.Error()}
}

// Apply applies the bundle to one image file as one transaction: all of
// it, committed with the record, or nothing (the image is left exactly as
// it was). With DryRun it only reports what would change.
func Apply(image string, b *Bundle, opts Options) (res Result) {
	defer recoverTo(image, &res)
	if len(b.Debs) > 0 {
		return applyDebs(image, b, opts)
	}
	im, err := mount.Open(image, mount.Options{ReadOnly: opts.DryRun, ReadOnlyReason: opts.ReadOnlyReason, TmpDir: opts.TmpDir})
	if err != nil {
		return failed(image, err)
	}
	defer im.Close() // without Commit this drops every change
	t, res, done := settle(image, imageTarget(im, opts.DryRun), b)
	if done {
		return res
	}
	if r := im.ReadOnlyReason(); r != "" && !opts.DryRun {
		return failed(image, fmt.Errorf("cannot write: %s", r))
	}
	b, decided, cleanup, err := withUpdates(im, b, opts)
	if err != nil {
		return failed(image, err)
	}
	defer cleanup()
	p, err := t.plan(b)
	if err != nil {
		return failed(image, err)
	}
	p.Changes = append(decided, p.Changes...)
	res.Changes, res.FilesUnchanged, res.ValuesUnchanged = p.Changes, p.FilesUnchanged, p.ValuesUnchanged
	if opts.DryRun {
		res.Status = WouldApply
		res.Changes = append(res.Changes, t.recordChange(b.ID))
		return res
	}
	when, err := commitPlan(im, t, b, p, opts)
	if err != nil {
		return failed(image, err)
	}
	res.Status, res.When = Applied, when.UTC().Format(time.RFC3339)
	slog.Info("patch applied", "image", image, "bundle", b.ID, "changes", len(p.Changes))
	return res
}

// commitPlan makes the plan's changes, writes the bundle's record and
// commits the image: the one ending of every apply, so that the record is
// in the same transaction as the changes it lists.
func commitPlan(im *mount.Image, t *target, b *Bundle, p *Plan, opts Options) (time.Time, error) {
	if err := p.run(); err != nil {
		return time.Time{}, err
	}
	when := opts.now()
	if err := t.writeRecord(b, p, when); err != nil {
		return time.Time{}, err
	}
	if _, err := im.Commit(); err != nil {
		return time.Time{}, fmt.Errorf("commit: %w", err)
	}
	return when, nil
}

// now is Options.Now, or the clock.
func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// imageTarget describes the guest of an image opened through mount.
func imageTarget(im *mount.Image, dry bool) *target {
	inf := inspect.Describe(im)
	t := &target{drives: inf.Drives, vols: map[string]*vol{}, dry: dry, openVol: imageVolume(im, dry)}
	t.os, _ = inf.OS.(*inspect.OS)
	if reg, _, err := im.Registry(); err == nil {
		t.reg = &imageReg{reg: reg, dry: dry}
	}
	return t
}

// settle settles the targets that need no plan: already applied, or not
// applicable.
func settle(image string, t *target, b *Bundle) (*target, Result, bool) {
	res := Result{Image: image}
	if t.os != nil {
		when, found, err := t.readRecord(b.ID)
		if err != nil {
			return t, failed(image, fmt.Errorf("reading patch records: %w", err)), true
		}
		if found {
			res.Status, res.When = AlreadyApplied, when
			return t, res, true
		}
	}
	if why := b.Applies.Applicable(t.os); why != "" {
		res.Status, res.Reason = NotApplicable, why
		return t, res, true
	}
	if t.os == nil {
		return t, failed(image, fmt.Errorf("no operating system found in the image, so there is nowhere to record a patch")), true
	}
	return t, res, false
}

// plan compares the bundle with the image; registry changes are made in
// memory as they are planned.
func (t *target) plan(b *Bundle) (*Plan, error) {
	p := &Plan{}
	if err := t.planFiles(b, p); err != nil {
		return nil, err
	}
	if err := t.planRegistry(b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Status tells whether the bundle is applied to one image file, without
// writing anything.
func Status(image string, b *Bundle) (res Result) {
	defer recoverTo(image, &res)
	im, err := mount.Open(image, mount.Options{ReadOnly: true})
	if err != nil {
		return failed(image, err)
	}
	defer im.Close()
	_, res, done := settle(image, imageTarget(im, true), b)
	if !done {
		res.Status = NotApplied
	}
	if res.Status == AlreadyApplied {
		res.Status = Applied
	}
	return res
}

// recoverTo turns a panic in an engine into this target's failure: one
// image never costs the others.
func recoverTo(image string, res *Result) {
	if r := recover(); r != nil {
		slog.Error("patch: panic", "image", image, "panic", r, "stack", string(debug.Stack()))
		*res = failed(image, fmt.Errorf("internal error: %v", r))
	}
}
