package inspect

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/ext"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/partition"
	"github.com/offvm/offvm/rpmpkg"
)

// rpmRoot describes an ext4 root made by mkfs.ext4 -d from root.
func describeRoot(t *testing.T, root string) *mount.Info {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs")
	f, _ := os.Create(img)
	f.Truncate(32 << 20)
	f.Close()
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, img)
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	fsys, err := ext.Open(fileDev{fh, 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var inf mount.Info
	if !describeLinux(&inf, &mount.Volume{Partition: partition.Partition{Number: 1}, FS: fsys}) {
		t.Fatal("not recognised as Linux")
	}
	return &inf
}

// A Fedora-like root whose rpm database (SQLite, with its write-ahead
// log) was made by the host's rpm: inspect lists it name by name as
// rpm -qa does.
func TestRPMSQLite(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	testutil.RequireTool(t, "rpm", "rpm")
	testutil.RequireTool(t, "rpmbuild", "rpm")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("NAME=\"Fedora Linux\"\nVERSION_ID=40\nID=fedora\n"), 0o644)
	db := filepath.Join(root, "usr/lib/sysimage/rpm")
	os.MkdirAll(db, 0o755)
	testutil.Run(t, "rpm", "--dbpath", db, "--initdb")
	work := t.TempDir()
	for i, name := range []string{"bash-offvm", "coreutils-offvm", "openssh-offvm"} {
		spec := fmt.Sprintf("Name: %s\nVersion: 1.%d\nRelease: %d.fc40\nEpoch: %d\nSummary: t\nLicense: MIT\nVendor: Fedora Project\nBuildArch: noarch\n%%description\nt\n%%files\n", name, i, i+1, i)
		sp := filepath.Join(work, name+".spec")
		os.WriteFile(sp, []byte(spec), 0o644)
		testutil.Run(t, "rpmbuild", "--define", "_topdir "+filepath.Join(work, "top"), "-bb", sp)
	}
	rpms, _ := filepath.Glob(filepath.Join(work, "top/RPMS/noarch/*.rpm"))
	testutil.Run(t, "rpm", append([]string{"--dbpath", db, "--justdb", "--nodeps", "-i"}, rpms...)...)
	out, err := exec.Command("rpm", "--dbpath", db, "-qa", "--qf", "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(want)

	inf := describeRoot(t, root)
	if len(inf.Problems) != 0 {
		t.Errorf("problems %v", inf.Problems)
	}
	var got []string
	for _, a := range inf.Applications {
		app := a.(Application)
		got = append(got, app.Name+" "+*app.Version)
		if app.Publisher == nil || *app.Publisher != "Fedora Project" {
			t.Errorf("%s: publisher %v", app.Name, app.Publisher)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 3 {
		t.Errorf("applications %v, rpm -qa %v", got, want)
	}
	if inf.OS.(*OS).LastUpdate == nil || inf.Patches == nil {
		t.Errorf("last update %v, patches %v: both known for a readable rpm database", inf.OS.(*OS).LastUpdate, inf.Patches)
	}
}

// rpmRootWith makes a root of the given distribution whose rpm folder
// holds file as name.
func rpmRootWith(t *testing.T, osRelease, dir, name string, data []byte) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, dir), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte(osRelease), 0o644)
	os.WriteFile(filepath.Join(root, dir, name), data, 0o644)
	return root
}

func appNames(inf *mount.Info) []string {
	var got []string
	for _, a := range inf.Applications {
		app := a.(Application)
		got = append(got, app.Name+" "+*app.Version)
	}
	return got
}

// A RHEL 8 root whose Berkeley DB Packages is a real one (rpmpkg's
// testdata): inspect lists it as the host's rpm (bdb_ro) lists it.
func TestRPMBerkeleyDB(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	testutil.RequireTool(t, "rpm", "rpm")
	b, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(), "rpmpkg/testdata/libuuid.Packages"))
	if err != nil {
		t.Fatal(err)
	}
	root := rpmRootWith(t, "NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"8.8\"\nID=rhel\n", "var/lib/rpm", "Packages", b)
	out, err := exec.Command("rpm", "--dbpath", filepath.Join(root, "var/lib/rpm"), "--define", "_db_backend bdb_ro",
		"-qa", "--qf", "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(want)
	inf := describeRoot(t, root)
	if got := appNames(inf); len(inf.Problems) != 0 || fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
		t.Errorf("applications %v (problems %v), rpm -qa %v", got, inf.Problems, want)
	}
	if inf.OS.(*OS).LastUpdate == nil || inf.Patches == nil {
		t.Errorf("last update %v, patches %v: both known for a readable rpm database", inf.OS.(*OS).LastUpdate, inf.Patches)
	}
}

// A SLE 15 root with a real ndb Packages.db: inspect lists what the ndb
// reader (proven against rpm in rpmpkg) reads, with SUSE as publisher.
func TestRPMNDB(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	gz, err := os.Open(filepath.Join(testutil.ModuleRoot(), "rpmpkg/testdata/sle15-bci.Packages.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	z, _ := gzip.NewReader(gz)
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	root := rpmRootWith(t, "NAME=\"SLES\"\nVERSION_ID=\"15.3\"\nID=sles\n", "var/lib/rpm", "Packages.db", b)
	pkgs, err := rpmpkg.ListNDB(filepath.Join(root, "var/lib/rpm/Packages.db"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range pkgs {
		want = append(want, p.Name+" "+p.EVR())
	}
	inf := describeRoot(t, root)
	if got := appNames(inf); len(inf.Problems) != 0 || fmt.Sprint(got) != fmt.Sprint(want) || len(want) < 20 {
		t.Errorf("applications %d %v (problems %v), want %d", len(got), got, inf.Problems, len(want))
	}
	for _, a := range inf.Applications {
		if app := a.(Application); app.Publisher == nil || !strings.Contains(*app.Publisher, "SUSE") {
			t.Errorf("%s: publisher %v", app.Name, app.Publisher)
			break
		}
	}
}

// A damaged Berkeley DB file gives no list (unknown, null) and a problem
// naming the file and the cause, never an empty list.
func TestRPMBerkeleyDamaged(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	root := rpmRootWith(t, "NAME=\"CentOS Linux\"\nVERSION_ID=\"7\"\nID=centos\n", "var/lib/rpm", "Packages", make([]byte, 8192))
	inf := describeRoot(t, root)
	if inf.Applications != nil || inf.Patches != nil || len(inf.Problems) != 1 ||
		!strings.Contains(inf.Problems[0], "/var/lib/rpm/Packages") || !strings.Contains(inf.Problems[0], "Berkeley DB") {
		t.Errorf("applications %v, patches %v, problems %v", inf.Applications, inf.Patches, inf.Problems)
	}
}
