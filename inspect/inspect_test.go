package inspect

import (
	"strings"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	kv := parseOSRelease([]byte("# comment\nNAME=\"Debian GNU/Linux\"\nVERSION_ID='12'\nID=debian\nBROKEN\nPRETTY_NAME=\"A \\\"quoted\\\" name\"\n"))
	for k, want := range map[string]string{"NAME": "Debian GNU/Linux", "VERSION_ID": "12", "ID": "debian", "PRETTY_NAME": `A "quoted" name`} {
		if kv[k] != want {
			t.Errorf("%s = %q, want %q", k, kv[k], want)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte("NAME=\"x\"\nID=y\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseOSRelease(b) })
}

// TestPackageKB: the CBS keys that name a KB, an LCU's child packages
// included; the rollup itself and look-alikes do not.
func TestPackageKB(t *testing.T) {
	for name, want := range map[string]string{
		"Package_for_KB4532691~31bf3856ad364e35~amd64~~17763.1039.1.4":      "KB4532691",
		"Package_1_for_KB5034439~31bf3856ad364e35~amd64~~17763.5329.1.9":    "KB5034439",
		"Package_12_for_KB5034439~31bf3856ad364e35~amd64~~17763.5329.1.9":   "KB5034439",
		"Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.5329.1.9":      "",
		"Package_abc_for_KB5034439~31bf3856ad364e35~amd64~~1.0":             "",
		"Package_for_KBx~31bf3856ad364e35~amd64~~1.0":                       "",
		"Microsoft-Windows-Foundation-Package~31bf3856ad364e35~amd64~~10.0": "",
	} {
		got, ok := packageKB(name)
		if got != want || ok != (want != "") {
			t.Errorf("packageKB(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// FuzzPackageKB: any key name gives a KB the name holds after "for_", or
// nothing, and never panics.
func FuzzPackageKB(f *testing.F) {
	for _, s := range []string{"Package_for_KB4532691~31bf3856ad364e35~amd64~~17763.1039.1.4", "Package_1_for_KB5034439~x", "Package_for_RollupFix~x", "Package__for_KB1", "Package_for_KB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kb, ok := packageKB(name)
		if ok != (kb != "") {
			t.Fatalf("packageKB(%q) = %q, %v", name, kb, ok)
		}
		if ok && (!strings.HasPrefix(kb, "KB") || !strings.Contains(name, "for_"+kb) || strings.Contains(kb, "~")) {
			t.Fatalf("packageKB(%q) = %q: not the name's KB", name, kb)
		}
	})
}
