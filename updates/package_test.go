package updates

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/updates/msutest"
)

// TestOpenPackage reads .msu and .cab packages built like Microsoft's
// (gcab), each also unpacked by cabextract.
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
		// the independent reader: cabextract unpacks the package (and the
		// .msu's inner cabinet) to the same update.mum
		raw := cabextractMum(t, p, pk.Inner)
		if string(raw) != c.spec.Mum() {
			t.Errorf("%s: cabextract's update.mum is not the one packed", p)
		}
		if m, err := parseMum(raw, p); err != nil || m.Identity != pk.Identity || m.KB != pk.KB || m.ParentBuild != pk.ParentBuild ||
			m.ParentRevision != pk.ParentRevision || m.Restart != pk.Restart {
			t.Errorf("%s: cabextract's update.mum reads %+v (%v); through our cabinet reader %+v", p, m, err, pk)
		}
	}
}

// cabextractMum unpacks update.mum with cabextract (from inner, a cabinet
// inside pkg, when set).
func cabextractMum(t *testing.T, pkg, inner string) []byte {
	t.Helper()
	if _, err := exec.LookPath("cabextract"); err != nil {
		t.Skip("cabextract not installed (scripts/deps.sh installs it)")
	}
	out := t.TempDir()
	if inner != "" {
		if b, err := exec.Command("cabextract", "-q", "-d", out, "-F", inner, pkg).CombinedOutput(); err != nil {
			t.Fatalf("cabextract %s: %v\n%s", pkg, err, b)
		}
		pkg = filepath.Join(out, inner)
	}
	if b, err := exec.Command("cabextract", "-q", "-d", out, "-F", "update.mum", pkg).CombinedOutput(); err != nil {
		t.Fatalf("cabextract %s: %v\n%s", pkg, err, b)
	}
	data, err := os.ReadFile(filepath.Join(out, "update.mum"))
	if err != nil {
		t.Fatal(err)
	}
	return data
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
