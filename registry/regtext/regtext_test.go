package regtext_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/regtext"
)

// sample uses every construct hivexregedit also understands.
const sample = `Windows Registry Editor Version 5.00

; a comment
[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor]
"String"="plain"
"Quoted"="say \"hi\" C:\\path"
@="the default"
"Dword"=dword:0000beef
"Binary"=hex:00,01,02,ff
"Expand"=hex(2):25,00,50,00,41,00,54,00,48,00,25,00,00,00
"Multi"=hex(7):61,00,00,00,62,00,63,00,00,00,00,00
"Qword"=hex(b):01,02,03,04,05,06,07,08
"None"=hex(0):01,02,03
"Long"=hex:00,01,02,03,04,05,06,07,08,09,0a,0b,0c,0d,0e,0f,10,11,12,13,14,15,16,\
  17,18,19,1a,1b,1c,1d,1e,1f,20,21,22,23,24,25,26,27,28,29,2a,2b,2c,2d,2e,2f,\
  30,31

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\Sub]
"x"=dword:00000001

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\Doomed]
"y"=dword:00000002

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\Doomed\Child]

[-HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\Doomed]

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor\Sub]
"x"=-
"z"=dword:00000003

[HKEY_LOCAL_MACHINE\SOFTWARE\Vendor]
"String"=-
`

const prefix = `HKEY_LOCAL_MACHINE\SOFTWARE`

func minimalHive(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(testutil.Corpus(t, "hivex/minimal"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func hivexExport(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("hivexregedit", "--export", "--prefix", prefix, path, `\`).Output()
	if err != nil {
		t.Fatalf("hivexregedit --export %s: %v", path, err)
	}
	return latin1Lines(string(out))
}

// latin1Lines turns the lines Perl printed in Latin-1 into UTF-8.
func latin1Lines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if !utf8.ValidString(l) {
			r := make([]rune, len(l))
			for j := 0; j < len(l); j++ {
				r[j] = rune(l[j])
			}
			lines[i] = string(r)
		}
	}
	return strings.Join(lines, "")
}

// mergeOurs parses text with Parse and applies it with our hive engine.
func mergeOurs(t *testing.T, path string, text []byte) *hive.Hive {
	t.Helper()
	ops, err := regtext.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hive.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := regtext.Apply(h.Root(), ops, prefix); err != nil {
		t.Fatal(err)
	}
	out, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// The same file merged by hivexregedit and by Parse+Apply gives hives that
// hivexregedit exports identically; Export prints that same text.
func TestParseAgainstHivex(t *testing.T) {
	testutil.RequireTool(t, "hivexregedit", "libwin-hivex-perl")
	dir := t.TempDir()
	theirs := minimalHive(t, dir, "theirs")
	ours := minimalHive(t, dir, "ours")
	reg := filepath.Join(dir, "in.reg")
	if err := os.WriteFile(reg, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "hivexregedit", "--merge", "--prefix", prefix, "--encoding", "UTF-16LE", theirs, reg)
	h := mergeOurs(t, ours, []byte(sample))
	want := hivexExport(t, theirs)
	if got := hivexExport(t, ours); got != want {
		t.Fatalf("hivex exports differ:\n--- ours\n%s\n--- hivex's merge\n%s", got, want)
	}
	var b bytes.Buffer
	if err := regtext.Export(&b, h.Root(), regtext.ExportOptions{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Fatalf("Export differs from hivexregedit --export:\n%s\n---\n%s", b.String(), want)
	}
}

// The same text in UTF-16LE with a BOM, in UTF-8 with a BOM, and with CRLF
// line ends parses to the same operations.
func TestEncodings(t *testing.T) {
	base, err := regtext.Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	crlf := strings.ReplaceAll(sample, "\n", "\r\n")
	u := utf16.Encode([]rune(crlf))
	wide := []byte{0xFF, 0xFE}
	for _, c := range u {
		wide = binary.LittleEndian.AppendUint16(wide, c)
	}
	for name, text := range map[string][]byte{
		"utf16le-bom": wide,
		"utf8-bom":    append([]byte("\xEF\xBB\xBF"), crlf...),
	} {
		ops, err := regtext.Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ops) != len(base) {
			t.Fatalf("%s: %d ops, want %d", name, len(ops), len(base))
		}
		for i := range ops {
			a, b := ops[i], base[i]
			if a.Kind != b.Kind || a.Key != b.Key || a.Name != b.Name || a.Type != b.Type || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("%s: op %d = %+v, want %+v", name, i, a, b)
			}
		}
	}
}

// Unicode names and strings (hivexregedit merges text as bytes, so hivexget
// is the oracle here).
func TestUnicode(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	text := "Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Ключ 😀]\n\"имя\"=\"значение ✓\"\n"
	p := minimalHive(t, t.TempDir(), "h")
	mergeOurs(t, p, []byte(text))
	if got := strings.TrimSpace(testutil.Run(t, "hivexget", p, `\Ключ 😀`, "имя")); got != "значение ✓" {
		t.Errorf("hivexget = %q", got)
	}
}

// REGEDIT4 files: strings are stored as UTF-16LE as regedit does; hex(2)
// data written in ANSI is widened. Checked through hivexget.
func TestRegedit4(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	text := "REGEDIT4\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Old]\r\n\"s\"=\"caf\xe9\"\r\n\"e\"=hex(2):25,54,4d,50,25,00\r\n\"d\"=dword:2a\r\n"
	p := minimalHive(t, t.TempDir(), "h")
	mergeOurs(t, p, []byte(text))
	for _, c := range []struct{ name, want string }{{"s", "café"}, {"e", "%TMP%"}, {"d", "42"}} {
		if got := strings.TrimSpace(testutil.Run(t, "hivexget", p, `\Old`, c.name)); got != c.want {
			t.Errorf("%s = %q, want %q", c.name, got, c.want)
		}
	}
}

// Export in regedit's own style (quoted strings, wrapped hex) merges back
// through hivexregedit to the same content.
func TestExportStringsMergesBack(t *testing.T) {
	testutil.RequireTool(t, "hivexregedit", "libwin-hivex-perl")
	dir := t.TempDir()
	src := minimalHive(t, dir, "src")
	h := mergeOurs(t, src, []byte(sample))
	var b bytes.Buffer
	if err := regtext.Export(&b, h.Root(), regtext.ExportOptions{Prefix: prefix, Strings: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"Quoted"="say \"hi\" C:\\path"`) || !strings.Contains(b.String(), ",\\\n  ") {
		t.Fatalf("not regedit style:\n%s", b.String())
	}
	dst := minimalHive(t, dir, "dst")
	reg := filepath.Join(dir, "out.reg")
	if err := os.WriteFile(reg, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "hivexregedit", "--merge", "--prefix", prefix, "--encoding", "UTF-16LE", dst, reg)
	if got, want := hivexExport(t, dst), hivexExport(t, src); got != want {
		t.Fatalf("round trip differs:\n%s\n---\n%s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no header":        "[HKEY_LOCAL_MACHINE\\X]\n",
		"value outside":    "REGEDIT4\n\"a\"=\"b\"\n",
		"bad dword":        "REGEDIT4\n[K]\n\"a\"=dword:123456789\n",
		"bad hex":          "REGEDIT4\n[K]\n\"a\"=hex:zz\n",
		"unterminated":     "REGEDIT4\n[K]\n\"a=\"b\n",
		"unknown data":     "REGEDIT4\n[K]\n\"a\"=blob:1\n",
		"garbage in key":   "REGEDIT4\n[K]\nnonsense\n",
		"big endian utf16": "\xFE\xFF\x00R",
	} {
		if _, err := regtext.Parse([]byte(text)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}
