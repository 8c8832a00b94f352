package inspect

import "testing"

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
