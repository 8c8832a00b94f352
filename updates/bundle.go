package updates

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/patcher"
)

// BundleStager stages a patch bundle's updates/ folder for patcher,
// inside the bundle's own transaction (patcher.SetUpdateStager).
type BundleStager struct {
	// Firstboot is offvm-firstboot.exe ("" = FirstbootPath).
	Firstboot string
}

// OpenUpdates reads the bundle's packages once for all its images.
func (BundleStager) OpenUpdates(paths []string) (any, error) {
	return OpenPackages(paths)
}

// StageInto writes into dir the bundle layout that stages what the image
// needs (nothing when it needs nothing), and one change per package
// saying what was decided: "stage" for the needed ones, "update" with
// the state for the others; a "note" says when a reboot is pending (the
// staged packages install after it, at the boot that finishes it).
func (s BundleStager) StageInto(im *mount.Image, opened any, dir string, now time.Time) ([]patcher.Change, error) {
	pkgs, ok := opened.([]*Package)
	if !ok {
		return nil, fmt.Errorf("internal error: update packages of type %T", opened)
	}
	plan, err := planStageImage(pkgs, im, im.Path)
	if err != nil {
		return nil, err
	}
	var out []patcher.Change
	for _, v := range plan.verdicts {
		if v.Status == Needed {
			out = append(out, patcher.Change{Action: "stage", Path: v.KB, Detail: filepath.Base(v.File)})
			continue
		}
		d := v.Status
		if v.Reason != "" {
			d += ": " + v.Reason
		}
		out = append(out, patcher.Change{Action: "update", Path: v.KB, Detail: d})
	}
	if len(plan.needed) == 0 {
		return out, nil
	}
	if len(plan.facts.Pending) > 0 {
		out = append(out, patcher.Change{Action: "note", Path: "reboot pending:", Detail: strings.Join(plan.facts.Pending, "; ")})
	}
	return out, plan.writeBundle(dir, s.Firstboot, now)
}
