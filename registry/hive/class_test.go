package hive_test

import (
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

// regfClasses runs libregf's regfexport (an independent reader) and returns
// the class name of every key that has one, by key path below the root.
func regfClasses(t *testing.T, path string, key string) map[string]string {
	t.Helper()
	testutil.RequireTool(t, "regfexport", "libregf-utils")
	args := []string{path}
	if key != "" {
		args = []string{"-K", key, path}
	}
	out, err := exec.Command("regfexport", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("regfexport %v: %v\n%s", args, err, out)
	}
	classes := map[string]string{}
	cur, keys := "", 0
	for _, l := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(l, "Key path: "); ok {
			keys++
			if key != "" && keys > 1 {
				break // -K goes on with the key's subkeys
			}
			cur = key
			if _, rest, found := strings.Cut(p, `\`); found && key == "" {
				cur = rest // the full export starts with the root key's name
			}
		}
		if c, ok := strings.CutPrefix(l, "Class name: "); ok {
			classes[cur] = c
		}
	}
	return classes
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func classText(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// TestClassNames: every class name of the real Windows 7 SYSTEM hive (the
// LSA keys JD, Skew1, GBG and Data among them) reads as regfexport prints
// it; a written hive keeps them all and holds a class set here, as
// regfexport reads the written file.
func TestClassNames(t *testing.T) {
	dir := t.TempDir()
	orig := corpusCopy(t, "regipy/SYSTEM.xz", dir, "SYSTEM")
	want := regfClasses(t, orig, "")
	for _, k := range []string{"JD", "Skew1", "GBG", "Data"} {
		if want[`ControlSet001\Control\Lsa\`+k] == "" {
			t.Fatalf("regfexport shows no class for Lsa\\%s: %v", k, want)
		}
	}
	h, err := hive.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	for path, c := range want {
		k, err := h.Lookup(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := classText(k.Class()); got != c {
			t.Errorf("class of %s: %q, regfexport says %q", path, got, c)
		}
	}
	k, err := h.Lookup(`ControlSet001\Control\Lsa`)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetClass(utf16le("offvm ✓")); err != nil {
		t.Fatal(err)
	}
	out, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	written := filepath.Join(dir, "written")
	writeFile(t, written, out)
	for path, c := range want {
		if got := regfClasses(t, written, path)[path]; got != c {
			t.Errorf("written hive: class of %s is %q, want %q", path, got, c)
		}
	}
	if got := regfClasses(t, written, `ControlSet001\Control\Lsa`)[`ControlSet001\Control\Lsa`]; got != "offvm ✓" {
		t.Errorf("class set here reads %q in regfexport", got)
	}
}
