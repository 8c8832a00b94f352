package updates

import (
	"fmt"
	"strings"
)

// The states of a package in an image.
const (
	Installed     = "installed"
	NotApplicable = "not applicable"
	Staged        = "staged"
	Needed        = "needed"
)

// CBS package states (CurrentState) that mean the package's content is
// in the image: installed, permanent, or superseded by a newer package.
const (
	cbsSuperseded = 0x50
	cbsInstalled  = 0x70
	cbsPermanent  = 0x80
)

// CBSPackage is one key of Component Based Servicing\Packages.
type CBSPackage struct {
	Key   string
	State uint32
}

// StagedRecord is HKLM\SOFTWARE\offvm\Staged\<KB> as offvm wrote it and
// offvm-firstboot updated it.
type StagedRecord struct {
	KB       string `json:"id"`
	State    string `json:"state"`
	Result   string `json:"result"`
	ExitCode string `json:"exit_code,omitempty"`
	Attempts string `json:"attempts,omitempty"`
}

// Facts are what decides a package's state in one image.
type Facts struct {
	Windows bool
	Build   int // 0 = unknown
	// UBR is CurrentVersion\UBR, the revision the last cumulative update
	// brought (-1 = unknown; the zero Facts of a test means unknown too
	// only when UBRKnown is false).
	UBR      int
	Arch     string
	Edition  string
	Packages []CBSPackage
	Staged   map[string]StagedRecord // by upper-case KB
	// Pending lists why a reboot is pending ("" entries never).
	Pending []string
	// ControlSet is Select\Current's ControlSet00N.
	ControlSet string
}

// Verdict is one package's state in one image.
type Verdict struct {
	KB     string `json:"kb"`
	File   string `json:"file"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// By is the CBS package that makes it installed.
	By string `json:"by,omitempty"`
}

// Decide tells the package's state from the facts. CBS alone says
// installed; offvm's own record says only staged.
func Decide(p *Package, f Facts) Verdict {
	v := Verdict{KB: p.KB, File: p.Path}
	if !f.Windows {
		v.Status, v.Reason = NotApplicable, "not a Windows image"
		return v
	}
	if by, why := installedBy(p, f.Packages); by != "" {
		v.Status, v.By, v.Reason = Installed, by, why
		return v
	}
	if by, why := includedByUBR(p, f); by != "" {
		v.Status, v.By, v.Reason = Installed, by, why
		return v
	}
	if why := notApplicable(p, f); why != "" {
		v.Status, v.Reason = NotApplicable, why
		return v
	}
	if r, ok := f.Staged[strings.ToUpper(p.KB)]; ok {
		if r.State == Staged {
			v.Status, v.Reason = Staged, "waiting for the next boot"
			return v
		}
		v.Status, v.Reason = Needed, fmt.Sprintf("staged before; the first boot recorded %s", describeResult(r))
		return v
	}
	v.Status = Needed
	return v
}

func describeResult(r StagedRecord) string {
	s := r.State
	if r.Result != "" {
		s += " (" + r.Result + ")"
	}
	if r.ExitCode != "" {
		s += ", exit code " + r.ExitCode
	}
	return s
}

// installedBy finds the CBS package that has this one, by preference:
// the same identity installed; this version marked superseded; a newer
// version of the same package for the same build installed; the KB's own
// package installed.
func installedBy(p *Package, pkgs []CBSPackage) (string, string) {
	kbName := "package_for_" + strings.ToLower(p.KB)
	type rule struct {
		why string
		ok  func(name, arch, ver string, st uint32) bool
	}
	in := func(st uint32) bool { return st == cbsInstalled || st == cbsPermanent }
	same := func(name, arch string) bool {
		return strings.EqualFold(name, p.Identity.Name) && (arch == "" || p.Identity.Arch == "" || strings.EqualFold(arch, p.Identity.Arch))
	}
	rules := []rule{
		{"this package is installed", func(n, a, v string, st uint32) bool {
			return in(st) && same(n, a) && compareVersions(v, p.Identity.Version) == 0
		}},
		{"installed, and since superseded", func(n, a, v string, st uint32) bool {
			return st == cbsSuperseded && same(n, a) && compareVersions(v, p.Identity.Version) == 0
		}},
		{"superseded by a newer version, installed", func(n, a, v string, st uint32) bool {
			return in(st) && same(n, a) && buildOf(v) == buildOf(p.Identity.Version) && compareVersions(v, p.Identity.Version) > 0
		}},
		{"this update's package is installed", func(n, a, v string, st uint32) bool {
			ln := strings.ToLower(n)
			return in(st) && strings.HasPrefix(ln, kbName) && (len(ln) == len(kbName) || ln[len(kbName)] == '_') && buildOf(v) == buildOf(p.Identity.Version)
		}},
	}
	for _, r := range rules {
		for _, c := range pkgs {
			parts := strings.Split(c.Key, "~")
			if len(parts) == 5 && r.ok(parts[0], parts[2], parts[4], c.State) {
				return c.Key, r.why
			}
		}
	}
	return "", ""
}

// buildOf is the Windows build a package version is for: the first part
// of a rollup's 17763.1039.1.4, the third of 10.0.17763.1.
func buildOf(v string) int {
	n, _ := parseVersion(v)
	switch {
	case len(n) > 0 && n[0] >= 1000:
		return n[0]
	case len(n) > 2:
		return n[2]
	}
	return 0
}

// notApplicable checks architecture, build and edition against the
// package's parent.
func notApplicable(p *Package, f Facts) string {
	a := strings.ToLower(p.Identity.Arch)
	if a != "" && a != "neutral" && f.Arch != "" && a != f.Arch && !(a == "wow64" && f.Arch == "amd64") {
		return fmt.Sprintf("the package is for %s, the image is %s", a, f.Arch)
	}
	if p.ParentBuild != 0 && f.Build != 0 {
		switch p.BuildCompare {
		case "GE":
			if f.Build < p.ParentBuild {
				return fmt.Sprintf("the package needs build %d or later, the image is build %d", p.ParentBuild, f.Build)
			}
		default: // EQ, and CBS's default
			if f.Build != p.ParentBuild {
				return fmt.Sprintf("the package is for build %d, the image is build %d", p.ParentBuild, f.Build)
			}
		}
	}
	if why := revisionMismatch(p, f); why != "" {
		return why
	}
	if ed := parentEdition(p); ed != "" && f.Edition != "" && !strings.EqualFold(ed, f.Edition) {
		return fmt.Sprintf("the package is for the %s edition, the image is %s", ed, f.Edition)
	}
	return ""
}

// parentEdition is X of a parent package Microsoft-Windows-XEdition, the
// way edition-specific packages name what they apply to.
func parentEdition(p *Package) string {
	return p.parentEdition
}

// cumulative says whether the package is a cumulative update (Microsoft
// names every LCU's package Package_for_RollupFix): its content is in
// every later cumulative update of the same build.
func cumulative(p *Package) bool {
	return strings.EqualFold(p.Identity.Name, "Package_for_RollupFix")
}

// revisionOf is the build and revision a package version brings: 17763
// and 1039 of a rollup's 17763.1039.1.4, of 10.0.17763.1039 the last two.
func revisionOf(v string) (build, rev int) {
	n, _ := parseVersion(v)
	switch {
	case len(n) > 1 && n[0] >= 1000:
		return n[0], n[1]
	case len(n) > 3:
		return n[2], n[3]
	}
	return 0, 0
}

// includedByUBR: the image's UBR says a cumulative update of this build
// at this or a later revision is in it, and cumulative updates include
// every earlier one (CBS may have lost the older package's key to a
// cleanup, but the UBR stays).
func includedByUBR(p *Package, f Facts) (string, string) {
	if !cumulative(p) || f.UBR == 0 || f.Build == 0 {
		return "", ""
	}
	build, rev := revisionOf(p.Identity.Version)
	if build != f.Build || rev == 0 || f.UBR < rev {
		return "", ""
	}
	by := fmt.Sprintf(`CurrentVersion\UBR = %d`, f.UBR)
	if f.UBR == rev {
		return by, fmt.Sprintf("the image is at %d.%d, the revision this cumulative update brings", f.Build, rev)
	}
	return by, fmt.Sprintf("the image is at %d.%d, later than the %d.%d this cumulative update brings", f.Build, f.UBR, build, rev)
}

// revisionMismatch checks the parent's revisionCompare against the
// image's UBR (CBS compares the parent's revision with the installed
// one; the UBR is that revision for the base of a build).
func revisionMismatch(p *Package, f Facts) string {
	if p.RevisionCompare == "" || p.ParentRevision == 0 || f.UBR == 0 || (p.ParentBuild != 0 && p.ParentBuild != f.Build) {
		return ""
	}
	switch p.RevisionCompare {
	case "GE":
		if f.UBR < p.ParentRevision {
			return fmt.Sprintf("the package needs %d.%d or later, the image is at %d.%d", f.Build, p.ParentRevision, f.Build, f.UBR)
		}
	case "EQ":
		if f.UBR != p.ParentRevision {
			return fmt.Sprintf("the package is for %d.%d, the image is at %d.%d", f.Build, p.ParentRevision, f.Build, f.UBR)
		}
	}
	return ""
}

// supersede marks, among packages given together, each needed one that a
// newer version of the same package (same name, architecture and build)
// also given is needed or staged for: staging both would install the
// older only to replace it.
func supersede(pkgs []*Package, vs []Verdict) {
	for i, p := range pkgs {
		if vs[i].Status != Needed {
			continue
		}
		best := -1
		for j, q := range pkgs {
			if j == i || (vs[j].Status != Needed && vs[j].Status != Staged) || !sameLine(p, q) ||
				compareVersions(q.Identity.Version, p.Identity.Version) <= 0 {
				continue
			}
			if best < 0 || compareVersions(q.Identity.Version, pkgs[best].Identity.Version) > 0 {
				best = j
			}
		}
		if best >= 0 {
			q := pkgs[best]
			// A newer version of the same package is given in the same
			// run and needed or staged: only that one is staged, and this
			// one is not applicable (the contract's four states).
			vs[i].Status, vs[i].By = NotApplicable, q.KB
			vs[i].Reason = fmt.Sprintf("superseded by %s (%s), given with it", q.KB, q.Identity.Version)
		}
	}
}

// sameLine says whether q is a version of the same package as p.
func sameLine(p, q *Package) bool {
	return strings.EqualFold(p.Identity.Name, q.Identity.Name) && strings.EqualFold(p.Identity.Arch, q.Identity.Arch) &&
		buildOf(p.Identity.Version) == buildOf(q.Identity.Version)
}
