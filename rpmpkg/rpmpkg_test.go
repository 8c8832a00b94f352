package rpmpkg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// blob builds a header blob from (tag, type, value) entries.
func blob(entries ...[3]any) []byte {
	var index, data []byte
	for _, e := range entries {
		tag, typ := e[0].(int), e[1].(int)
		off := len(data)
		switch v := e[2].(type) {
		case string:
			data = append(append(data, v...), 0)
		case int:
			for len(data)%4 != 0 {
				data = append(data, 0)
			}
			off = len(data)
			data = binary.BigEndian.AppendUint32(data, uint32(v))
		}
		index = binary.BigEndian.AppendUint32(index, uint32(tag))
		index = binary.BigEndian.AppendUint32(index, uint32(typ))
		index = binary.BigEndian.AppendUint32(index, uint32(off))
		index = binary.BigEndian.AppendUint32(index, 1)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(entries)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(append(b, index...), data...)
}

func TestParseHeader(t *testing.T) {
	good := blob([3]any{tagName, typeString, "bash"}, [3]any{tagEpoch, typeInt32, 2},
		[3]any{tagVersion, typeString, "5.2.26"}, [3]any{tagRelease, typeString, "3.fc40"}, [3]any{tagArch, typeString, "x86_64"})
	p, err := ParseHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "bash" || p.EVR() != "2:5.2.26-3.fc40" || p.Arch != "x86_64" {
		t.Errorf("parsed %+v (%s)", p, p.EVR())
	}
	for name, b := range map[string][]byte{
		"short":        good[:6],
		"truncated":    good[:len(good)-3],
		"no name":      blob([3]any{tagVersion, typeString, "1"}),
		"name not str": blob([3]any{tagName, typeInt32, 7}),
		"unterminated": good[:len(good)-1],
	} {
		if _, err := ParseHeader(b); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: %v, want ErrHeader", name, err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(blob([3]any{tagName, typeString, "bash"}, [3]any{tagEpoch, typeInt32, 1}))
	f.Add(blob([3]any{tagName, typeI18NString, "x"}, [3]any{tagVendor, typeString, ""}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseHeader(b); err == nil && p.Name == "" {
			t.Fatal("accepted a header without a name")
		}
	})
}

// A database made by the host's rpm (Debian's rpm package) with packages
// built by rpmbuild, listed as rpm -qa lists it.
func TestListSQLite(t *testing.T) {
	for _, tool := range []string{"rpm", "rpmbuild"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install rpm)", tool)
		}
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	rpmRun(t, "--dbpath", db, "--initdb")
	for _, p := range []struct{ name, epoch, version, release string }{
		{"offvm-one", "", "1.2.3", "4"}, {"offvm-two", "3", "0.9", "1.el9"}, {"zlib-offvm", "", "1.2.13", "2"},
	} {
		rpmRun(t, "--dbpath", db, "--justdb", "--nodeps", "-i", buildRPM(t, dir, p.name, p.epoch, p.version, p.release))
	}
	want := strings.Fields(rpmRun(t, "--dbpath", db, "-qa", "--qf", "%{NAME}=%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH}\n"))
	sort.Strings(want)
	got, err := ListSQLite(filepath.Join(db, "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name+"="+p.EVR()+"."+p.Arch)
	}
	if fmt.Sprint(names) != fmt.Sprint(want) || len(want) != 3 {
		t.Errorf("listed %v, rpm -qa %v", names, want)
	}
}

func rpmRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("rpm", args...).Output()
	if err != nil {
		t.Fatalf("rpm %v: %v", args, err)
	}
	return string(out)
}

func buildRPM(t *testing.T, dir, name, epoch, version, release string) string {
	t.Helper()
	return buildRPMDesc(t, dir, name, epoch, version, release, "offvm test package")
}

// buildRPMDesc builds a noarch package whose description is desc (a long
// one makes a header that spans several database pages).
func buildRPMDesc(t *testing.T, dir, name, epoch, version, release, desc string) string {
	t.Helper()
	spec := fmt.Sprintf("Name: %s\nVersion: %s\nRelease: %s\nSummary: offvm test\nLicense: MIT\nBuildArch: noarch\n", name, version, release)
	if epoch != "" {
		spec += "Epoch: " + epoch + "\n"
	}
	spec += "%description\n" + desc + "\n%files\n"
	sp := filepath.Join(dir, name+".spec")
	os.WriteFile(sp, []byte(spec), 0o644)
	top := filepath.Join(dir, "top")
	if out, err := exec.Command("rpmbuild", "--define", "_topdir "+top, "-bb", sp).CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	m, _ := filepath.Glob(filepath.Join(top, "RPMS/noarch", name+"-*.rpm"))
	if len(m) != 1 {
		t.Fatalf("rpmbuild made %v", m)
	}
	return m[0]
}
