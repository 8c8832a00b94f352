package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAndFor(t *testing.T) {
	dir := t.TempDir()
	bek := filepath.Join(dir, "k.BEK")
	if err := os.WriteFile(bek, []byte("bekbytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `# comment
111111-222222-333333-444444-555555-666666-777777-888888
{4A6D8E2C-1111-2222-3333-444455556666} password:hunter2
DESKTOP-* bek:k.BEK
passphrase:luks pass
0a0b0c0d-0000-0000-0000-000000000001 keyfile:` + bek + `
`
	set, err := Parse(filepath.Join(dir, "keys"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Secrets) != 5 {
		t.Fatalf("got %d secrets, want 5", len(set.Secrets))
	}
	tests := []struct {
		guid, desc string
		kinds      []Kind
		want       []string // values in order
	}{
		{"4a6d8e2c-1111-2222-3333-444455556666", "", []Kind{Password}, []string{"hunter2"}},
		{"", "DESKTOP-1 C: 1/1/2026", []Kind{BEK, Recovery}, []string{"bekbytes", "111111-222222-333333-444444-555555-666666-777777-888888"}},
		{"{0A0B0C0D-0000-0000-0000-000000000001}", "", []Kind{KeyFile, Passphrase}, []string{"rootkey", "luks pass"}},
		{"ffffffff-0000-0000-0000-000000000000", "SERVER", []Kind{Password}, nil},
	}
	if err := os.WriteFile(bek, []byte("bekbytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	set.Secrets[4].Value = []byte("rootkey")
	for _, tc := range tests {
		var got []string
		for _, s := range set.For(tc.guid, tc.desc, tc.kinds...) {
			got = append(got, string(s.Value))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("For(%q, %q) = %q, want %q", tc.guid, tc.desc, got, tc.want)
		}
	}
	if strings.Contains(set.Secrets[1].String(), "hunter2") {
		t.Error("String shows the secret")
	}
}

func TestLoadRefusesOpenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte("passphrase:x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Load of a 0644 file: %v, want a refusal", err)
	}
	os.Chmod(p, 0o600)
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, line := range []string{"12345-1", "secret", "bek:/nonexistent/file"} {
		if _, err := Parse("/k", []byte(line)); err == nil {
			t.Errorf("Parse(%q) accepted", line)
		} else if strings.Contains(err.Error(), "12345-1") || strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the line: %v", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("passphrase:x\nDESKTOP-* password:y\n"))
	f.Fuzz(func(t *testing.T, b []byte) { Parse("/k", b) })
}
