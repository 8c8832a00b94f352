package updates

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

func pkg(kb, name, ver string, build int) *Package {
	return &Package{KB: kb, Path: kb + ".msu", Identity: Identity{Name: name, Version: ver, Arch: "amd64", PublicKeyToken: "31bf3856ad364e35"},
		ParentBuild: build, BuildCompare: "EQ"}
}

// ubr is a bare 17763 image at revision n.
func ubr(n int) Facts {
	return Facts{Windows: true, Build: 17763, UBR: n, Arch: "amd64", Staged: map[string]StagedRecord{}}
}

func needsRev(cmp string, rev int) *Package {
	p := pkg("KB4000005", "Package_for_KB4000005", "17763.1600.1.1", 17763)
	p.RevisionCompare, p.ParentRevision = cmp, rev
	return p
}

func TestDecide(t *testing.T) {
	lcu := pkg("KB4532691", "Package_for_RollupFix", "17763.1039.1.4", 17763)
	old := pkg("KB4524148", "Package_for_RollupFix", "17763.914.1.5", 17763)
	ssu := pkg("KB5005112", "Package_for_ServicingStack_2090", "17763.2090.1.1", 17763)
	ssu.ServicingStack = true
	lcu22 := pkg("KB5034129", "Package_for_RollupFix", "20348.2227.1.5", 20348)
	kbOnly := pkg("KB4470788", "Package_for_KB4470788", "17763.164.1.1", 17763)
	ge := pkg("KB4000002", "Package_for_Thing", "10.0.1.0", 17000)
	ge.BuildCompare = "GE"
	arm := pkg("KB4000003", "Package_for_RollupFix", "17763.1039.1.4", 17763)
	arm.Identity.Arch = "arm64"
	edition := pkg("KB4000004", "Package_for_Feature", "17763.1.1.1", 17763)
	edition.parentEdition = "ServerDatacenter"
	installed := []CBSPackage{
		{Key: "Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.1039.1.4", State: 0x70},
		{Key: "Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.914.1.5", State: 0x50},
		{Key: "Package_for_KB4470788~31bf3856ad364e35~amd64~~17763.164.1.1", State: 0x70},
		{Key: "Package_for_ServicingStack_2090~31bf3856ad364e35~amd64~~17763.2090.1.1", State: 0x20}, // resolved, not installed
	}
	win := Facts{Windows: true, Build: 17763, Arch: "amd64", Edition: "ServerStandard", Packages: installed, Staged: map[string]StagedRecord{}}
	newer := win
	newer.Packages = []CBSPackage{{Key: "Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.5329.1.9", State: 0x70}}
	bare := Facts{Windows: true, Build: 17763, Arch: "amd64", Staged: map[string]StagedRecord{"KB4532691": {State: "staged"}, "KB5005112": {State: "failed", Result: "failed", ExitCode: "0x00000005 (5)"}}}
	cases := []struct {
		name   string
		p      *Package
		f      Facts
		status string
		reason string
	}{
		{"installed", lcu, win, Installed, "this package is installed"},
		{"superseded state", old, win, Installed, "superseded"},
		{"newer installed", lcu, newer, Installed, "newer version"},
		{"by KB name", kbOnly, win, Installed, "this package is installed"},
		{"ssu resolved only", ssu, win, Needed, ""},
		{"other build", lcu22, win, NotApplicable, "build 20348, the image is build 17763"},
		{"GE build ok", ge, win, Needed, ""},
		{"arch", arm, win, NotApplicable, "for arm64, the image is amd64"},
		{"edition", edition, win, NotApplicable, "ServerDatacenter edition"},
		{"staged", lcu, bare, Staged, "next boot"},
		{"staged then failed", ssu, bare, Needed, "exit code 0x00000005"},
		{"newer but other build", lcu, Facts{Windows: true, Build: 17763, Arch: "amd64", Packages: []CBSPackage{{Key: "Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.2227.1.5", State: 0x70}}}, Needed, ""},
		{"linux", lcu, Facts{}, NotApplicable, "not a Windows image"},
		{"installed wins over staged", lcu, Facts{Windows: true, Build: 17763, Arch: "amd64", Packages: installed, Staged: bare.Staged}, Installed, ""},
		{"UBR later", lcu, ubr(1040), Installed, "17763.1040, later than the 17763.1039"},
		{"UBR equal", lcu, ubr(1039), Installed, "the revision this cumulative update brings"},
		{"UBR older", lcu, ubr(914), Needed, ""},
		{"UBR says nothing of an SSU", ssu, ubr(5000), Needed, ""},
		{"UBR of another build", lcu22, ubr(9000), NotApplicable, "build 20348"},
		{"revision GE unmet", needsRev("GE", 1500), ubr(1039), NotApplicable, "needs 17763.1500 or later, the image is at 17763.1039"},
		{"revision GE met", needsRev("GE", 1500), ubr(1501), Needed, ""},
		{"revision EQ unmet", needsRev("EQ", 1500), ubr(1501), NotApplicable, "for 17763.1500"},
		{"revision, UBR unknown", needsRev("GE", 1500), win, Needed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Decide(c.p, c.f)
			if v.Status != c.status || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("%+v, want %s (%s)", v, c.status, c.reason)
			}
			if v.Status == Installed && v.By == "" {
				t.Fatal("installed without the CBS package that says so")
			}
		})
	}
}

// Several versions of one package given together: only the newest that
// is needed or staged is staged, the others are superseded by it.
func TestSupersede(t *testing.T) {
	jan := pkg("KB5034127", "Package_for_RollupFix", "17763.5329.1.9", 17763)
	feb := pkg("KB5034768", "Package_for_RollupFix", "17763.5458.1.6", 17763)
	mar := pkg("KB5035849", "Package_for_RollupFix", "17763.5576.1.5", 17763)
	armMar := pkg("KB5035850", "Package_for_RollupFix", "17763.5576.1.5", 17763)
	armMar.Identity.Arch = "arm64"
	ssu := pkg("KB5035845", "Package_for_ServicingStack_5570", "17763.5570.1.1", 17763)
	base := ubr(5206)
	staged := ubr(5206)
	staged.Staged = map[string]StagedRecord{"KB5035849": {State: Staged}}
	for _, c := range []struct {
		name string
		pkgs []*Package
		f    Facts
		want []string
	}{
		{"newest wins", []*Package{jan, mar, feb, ssu}, base, []string{"superseded by KB5035849", Needed, "superseded by KB5035849", Needed}},
		{"newer for another arch is no rival", []*Package{jan, armMar}, base, []string{Needed, NotApplicable}},
		{"newer already staged", []*Package{feb, mar}, staged, []string{"superseded by KB5035849", Staged}},
		{"older already in by UBR", []*Package{jan, mar}, ubr(5400), []string{Installed, Needed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			vs := DecideAll(c.pkgs, c.f)
			for i, v := range vs {
				got := v.Status
				if v.Status == NotApplicable && v.By != "" {
					got = "superseded by " + v.By
				}
				if got != c.want[i] {
					t.Errorf("%s: %s (%s), want %s", v.KB, got, v.Reason, c.want[i])
				}
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"17763.1039.1.4", "17763.914.1.5", 1}, {"10.0.17763.1", "10.0.17763.1", 0}, {"10.0", "10.0.0.1", -1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("%s vs %s: %d", c.a, c.b, got)
		}
	}
}

// TestCorpusControlSet reads Select\Current from real Windows SYSTEM
// hives (Windows 7 and 10 1709) and finds no offvm records there.
func TestCorpusControlSet(t *testing.T) {
	for _, name := range []string{"regipy/SYSTEM.xz", "regipy/SYSTEM_WIN_10_1709.xz"} {
		p := testutil.Corpus(t, name)
		data, err := exec.Command("xz", "-dc", p).Output()
		if err != nil {
			t.Fatalf("xz -dc %s: %v", p, err)
		}
		h, err := hive.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if cs := ControlSet(h); cs != "ControlSet001" {
			t.Errorf("%s: %s, want ControlSet001 (corpus README: Select\\Current = 1)", name, cs)
		}
		if _, err := h.Lookup(`ControlSet001\Control\Session Manager`); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(StagedRecords(h)) != 0 {
			t.Errorf("%s: staged records in a hive offvm never touched", name)
		}
	}
}
