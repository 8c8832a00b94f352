package updates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/updates/msutest"
)

// TestOpenPackage reads .msu and .cab packages built like Microsoft's.
func TestOpenPackage(t *testing.T) {
	msutest.Need(t)
	dir := t.TempDir()
	needs1500 := msutest.LCU17763
	needs1500.KB, needs1500.ParentRevision = "KB4000006", 1500
	cases := []struct {
		spec msutest.Spec
		msu  bool
	}{
		{msutest.LCU17763, true}, {msutest.LCU17763, false}, {msutest.SSU17763, true},
		{msutest.LCU20348, true}, {msutest.Superseded, true}, {needs1500, false},
	}
	for _, c := range cases {
		var p string
		if c.msu {
			p = c.spec.MSU(t, t.TempDir())
		} else {
			p = c.spec.CAB(t, dir)
		}
		pk, err := OpenPackage(p)
		if err != nil {
			t.Fatal(err)
		}
		kind := map[bool]string{true: "msu", false: "cab"}[c.msu]
		if pk.KB != c.spec.KB || pk.Kind != kind || pk.Identity.Name != c.spec.Name || pk.Identity.Version != c.spec.Version ||
			pk.Identity.Arch != "amd64" || pk.Identity.PublicKeyToken != "31bf3856ad364e35" || pk.ParentBuild != c.spec.ParentBuild ||
			pk.BuildCompare != "EQ" || pk.ReleaseType != c.spec.ReleaseType || pk.Restart != c.spec.Restart ||
			pk.RevisionCompare != "GE" || pk.ParentRevision != max(c.spec.ParentRevision, 1) {
			t.Errorf("%s: %+v", p, pk)
		}
		if pk.ServicingStack != strings.Contains(c.spec.Name, "ServicingStack") {
			t.Errorf("%s: servicing stack %v", p, pk.ServicingStack)
		}
		if c.msu && (pk.AppliesTo != c.spec.Product || !strings.HasSuffix(pk.Inner, "-x64.cab")) {
			t.Errorf("%s: applies to %q, inner %q", p, pk.AppliesTo, pk.Inner)
		}
		if want := c.spec.Name + "~31bf3856ad364e35~amd64~~" + c.spec.Version; pk.Identity.Key() != want {
			t.Errorf("key %s, want %s", pk.Identity.Key(), want)
		}
	}
}

// TestOpenPackageRefusals: damaged cabinets and manifests are refused
// naming the file.
func TestOpenPackageRefusals(t *testing.T) {
	msutest.Need(t)
	msu := msutest.LCU17763.MSU(t, t.TempDir())
	good, _ := os.ReadFile(msu)
	noMum := t.TempDir()
	must(t, os.WriteFile(filepath.Join(noMum, "readme.txt"), []byte("hello"), 0o644))
	plain := filepath.Join(t.TempDir(), "plain.cab")
	msutest.Gcab(t, plain, noMum, false, "readme.txt")
	badMum := t.TempDir()
	must(t, os.WriteFile(filepath.Join(badMum, "update.mum"), []byte("<assembly><assemblyIdentity name="), 0o644))
	broken := filepath.Join(t.TempDir(), "Windows10.0-KB1234567-x64.cab")
	msutest.Gcab(t, broken, badMum, true, "update.mum")
	cases := []struct {
		name, path, want string
	}{
		{"damaged msu", writeTemp(t, "KB4532691.msu", append(good[:len(good)-200:len(good)-200], make([]byte, 200)...)), "damaged cabinet"},
		{"msu without package", plain, "not an update package"},
		{"broken manifest", broken, "update.mum"},
		{"not a cabinet", writeTemp(t, "x.msu", []byte("PK\x03\x04 a zip")), "MSCF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := OpenPackage(c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("got %v, want an error naming %s and %q", err, c.path, c.want)
			}
		})
	}
}

func writeTemp(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	must(t, os.WriteFile(p, b, 0o644))
	return p
}
