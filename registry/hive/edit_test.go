package hive_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
	"www.velocidex.com/golang/regparser"
)

// hivexMerge merges .reg text into a hive with hivexregedit.
func hivexMerge(t *testing.T, hivePath, reg string) {
	t.Helper()
	testutil.RequireTool(t, "hivexregedit", "libwin-hivex-perl")
	rf := filepath.Join(t.TempDir(), "in.reg")
	writeFile(t, rf, []byte(reg))
	testutil.Run(t, "hivexregedit", "--merge", hivePath, rf)
}

// baseHive makes a small hive with hivexregedit --merge from text.
func baseHive(t *testing.T, dir string) string {
	t.Helper()
	p := corpusCopy(t, "hivex/minimal", dir, "base")
	hivexMerge(t, p, `Windows Registry Editor Version 5.00

[\Keep]
"kept"=hex(1):6b,00,65,00,65,00,70,00,00,00
"gone"=dword:00000007

[\Tree]
"x"=dword:00000001

[\Tree\A]

[\Tree\A\B]
"deep"=hex(3):01,02,03

[\Other]
@=hex(1):64,00,65,00,66,00,00,00
`)
	return p
}

func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s + "\x00"))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func hexList(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ",")
}

// edit is one change, made through our engine and, as .reg text, through
// hivexregedit: both hives must then export the same.
type edit struct {
	key   string
	name  string
	typ   uint32
	data  []byte
	del   bool // delete the value (or the key when name is "-")
	isKey bool
}

func TestEditAgainstHivex(t *testing.T) {
	testutil.RequireTool(t, "hivexsh", "libhivex-bin")
	dir := t.TempDir()
	base := baseHive(t, dir)

	big := bytes.Repeat([]byte("0123456789abcdef"), 6400) // 102400 bytes: db cells
	edits := []edit{
		{key: "Types", name: "sz", typ: hive.RegSz, data: utf16z("hello")},
		{key: "Types", name: "expand", typ: hive.RegExpandSz, data: utf16z(`%SystemRoot%\x`)},
		{key: "Types", name: "bin", typ: hive.RegBinary, data: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{key: "Types", name: "dword", typ: hive.RegDword, data: []byte{0x78, 0x56, 0x34, 0x12}},
		{key: "Types", name: "dwordbe", typ: hive.RegDwordBigEndian, data: []byte{0x12, 0x34, 0x56, 0x78}},
		{key: "Types", name: "link", typ: hive.RegLink, data: utf16z(`\Registry\Machine\X`)[:38]},
		{key: "Types", name: "multi", typ: hive.RegMultiSz, data: append(append(utf16z("a"), utf16z("bc")...), 0, 0)},
		{key: "Types", name: "qword", typ: hive.RegQword, data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{key: "Types", name: "none-odd", typ: hive.RegNone, data: []byte{1, 2, 3}},
		{key: "Types", name: "empty", typ: hive.RegBinary, data: []byte{}},
		{key: "Types", name: "custom", typ: 0x12345, data: []byte{9, 9, 9, 9, 9}},
		{key: "Types", name: "", typ: hive.RegSz, data: utf16z("default")},
		{key: "Types", name: "big", typ: hive.RegBinary, data: big},
		{key: "Types", name: "edge16344", typ: hive.RegBinary, data: bytes.Repeat([]byte{7}, 16344)},
		{key: "Types", name: "edge16345", typ: hive.RegBinary, data: bytes.Repeat([]byte{8}, 16345)},
		{key: "Keep", name: "gone", del: true},
		{key: "Keep", name: "kept", typ: hive.RegDword, data: []byte{1, 0, 0, 0}}, // replaces "kept"
		{key: "Other", name: "", del: true},
		{key: "Tree", name: "-", isKey: true, del: true},
		{key: "Ключ", name: "значение", typ: hive.RegDword, data: []byte{2, 0, 0, 0}},
		{key: "日本語", name: "名前", typ: hive.RegSz, data: utf16z("値")},
		{key: "emoji😀", name: "é😀", typ: hive.RegDword, data: []byte{3, 0, 0, 0}},
	}
	for i := 0; i < 1500; i++ { // more than one leaf holds: an ri list
		edits = append(edits, edit{key: fmt.Sprintf(`Many\Sub%04d`, i), name: "n", typ: hive.RegDword, data: []byte{byte(i), byte(i >> 8), 0, 0}})
	}

	// Our engine.
	h, err := hive.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		if e.isKey {
			if err := h.Root().DeleteSubkey(e.key); err != nil {
				t.Fatal(err)
			}
			continue
		}
		k, err := h.Root().CreatePath(e.key)
		if err != nil {
			t.Fatal(err)
		}
		if e.del {
			err = k.DeleteValue(e.name)
		} else {
			err = k.SetValue(e.name, e.typ, e.data)
		}
		if err != nil {
			t.Fatalf("%s %q: %v", e.key, e.name, err)
		}
	}
	out, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours")
	writeFile(t, ours, out)

	// The same edits through hivexregedit.
	var reg strings.Builder
	reg.WriteString("Windows Registry Editor Version 5.00\n\n")
	made := map[string]bool{}
	for _, e := range edits {
		if e.isKey {
			fmt.Fprintf(&reg, "[-\\%s]\n\n", e.key)
			continue
		}
		parts := strings.Split(e.key, `\`)
		for i := range parts[:len(parts)-1] {
			p := strings.Join(parts[:i+1], `\`)
			if !made[p] {
				fmt.Fprintf(&reg, "[\\%s]\n\n", p)
				made[p] = true
			}
		}
		fmt.Fprintf(&reg, "[\\%s]\n", e.key)
		lead := `"` + strings.ReplaceAll(e.name, `"`, `\"`) + `"`
		if e.name == "" {
			lead = "@"
		}
		if e.del {
			fmt.Fprintf(&reg, "%s=-\n\n", lead)
		} else {
			fmt.Fprintf(&reg, "%s=hex(%x):%s\n\n", lead, e.typ, hexList(e.data))
		}
	}
	want := filepath.Join(dir, "want")
	b, _ := os.ReadFile(base)
	writeFile(t, want, b)
	hivexMerge(t, want, reg.String())

	if got, exp := hivexExport(t, ours, `\`), hivexExport(t, want, `\`); got != exp {
		t.Fatalf("hivexregedit --export differs: %s", firstDiff(got, exp))
	}

	// hivexsh sees the ri list whole and the values of a key.
	sh := filepath.Join(dir, "script")
	writeFile(t, sh, []byte("cd \\Many\nls\ncd \\Types\nlsval\n"))
	shOut := testutil.Run(t, "hivexsh", "-f", sh, ours)
	if n := strings.Count(shOut, "Sub"); n != 1500 {
		t.Errorf("hivexsh ls \\Many: %d subkeys, want 1500", n)
	}
	if !strings.Contains(shOut, `"dword"=dword:12345678`) {
		t.Errorf("hivexsh lsval lacks the dword:\n%s", trunc(shOut))
	}
	if got := strings.TrimSpace(testutil.Run(t, "hivexget", ours, `\Types`, "sz")); got != "hello" {
		t.Errorf("hivexget sz = %q", got)
	}
	if got := strings.TrimSpace(testutil.Run(t, "hivexget", ours, `\日本語`, "名前")); got != "値" {
		t.Errorf("hivexget 名前 = %q", got)
	}

	// python3-hivex reads the big value and the unicode names.
	py := `import hivex,sys
h=hivex.Hivex(sys.argv[1])
n=h.node_get_child(h.root(),"Types")
t,d=h.value_value(h.node_get_value(n,"big"))
print(t,len(d),d[:16].decode())
print(h.node_name(h.node_get_child(h.root(),"emoji😀")))
print(len(h.node_children(h.node_get_child(h.root(),"Many"))))
`
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		pyOut, err := exec.Command("/usr/bin/python3", "-c", py, ours).CombinedOutput()
		if err != nil {
			t.Skipf("python3-hivex: %v\n%s", err, pyOut)
		}
		if want := "3 102400 0123456789abcdef\nemoji😀\n1500\n"; string(pyOut) != want {
			t.Errorf("python3-hivex printed %q, want %q", pyOut, want)
		}
	}

	// regparser, a second independent reader, walks the same tree.
	checkWithRegparser(t, ours, h)
}

// checkWithRegparser compares every key's subkey count and value data as
// regparser reads them with our model (names only where they are ASCII:
// regparser prints stored name bytes as they are).
func checkWithRegparser(t *testing.T, path string, h *hive.Hive) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := regparser.NewRegistry(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var keys int
	var rec func(rk *regparser.CM_KEY_NODE, k *hive.Key)
	rec = func(rk *regparser.CM_KEY_NODE, k *hive.Key) {
		keys++
		subs, _ := k.Subkeys()
		rsubs := rk.Subkeys()
		if len(rsubs) != len(subs) {
			t.Fatalf("%q: regparser sees %d subkeys, we %d", k.Path(), len(rsubs), len(subs))
		}
		// Class name, last-written time and security descriptor, read by
		// regparser from the cells of our file, equal what we read.
		if rk.ClassLength() > 0 || len(k.Class()) > 0 {
			if got := cellBytes(data, rk.Class(), 0, int(rk.ClassLength())); !bytes.Equal(got, k.Class()) {
				t.Errorf("%q: class %x in our file, %x read", k.Path(), got, k.Class())
			}
		}
		if rk.LastWriteTime().Time.Unix() != k.LastWritten().Unix() { // regparser keeps seconds
			t.Errorf("%q: last written %v in our file, %v read", k.Path(), rk.LastWriteTime().Time, k.LastWritten())
		}
		if sk := cellBytes(data, rk.Security(), 16, 4); len(sk) == 4 && k.Security() != nil {
			n := int(binary.LittleEndian.Uint32(sk))
			if got := cellBytes(data, rk.Security(), 20, n); !bytes.Equal(got, k.Security().Descriptor()) {
				t.Errorf("%q: security descriptor differs", k.Path())
			}
		}
		vals, _ := k.Values()
		rvals := rk.Values()
		if len(rvals) != len(vals) {
			t.Fatalf("%q: regparser sees %d values, we %d", k.Path(), len(rvals), len(vals))
		}
		byName := map[string][]byte{}
		for _, rv := range rvals {
			byName[rv.ValueName()] = rv.ValueData().Data
		}
		for _, v := range vals {
			d, _ := v.Data()
			rd, ok := byName[v.Name()]
			if ok && len(d) < 4 && len(rd) == 4 {
				rd = rd[:len(d)] // regparser reads inline data as 4 bytes
			}
			if ok && !bytes.Equal(rd, d) && len(d) <= 16344 {
				t.Errorf("%q value %q: regparser reads %d bytes, we %d", k.Path(), v.Name(), len(rd), len(d))
			}
		}
		for _, rs := range rsubs {
			s, err := k.Subkey(rs.Name())
			if err != nil {
				continue // a UTF-16 name, which regparser leaves encoded
			}
			rec(rs, s)
		}
	}
	rec(r.OpenKey(""), h.Root())
	t.Logf("regparser walked %d keys", keys)
}

// Repeated edits and rewrites do not grow the file.
func TestNoGrowth(t *testing.T) {
	dir := t.TempDir()
	p := baseHive(t, dir)
	var first int
	for round := 0; round < 6; round++ {
		h, err := hive.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		k, err := h.Root().CreatePath(`Churn`)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.SetValue("blob", hive.RegBinary, bytes.Repeat([]byte{byte(round)}, 50000)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			name := fmt.Sprintf("k%d", i)
			k.DeleteSubkey(name)
			c, err := k.CreateSubkey(name)
			if err != nil {
				t.Fatal(err)
			}
			c.SetValue("v", hive.RegSz, utf16z(fmt.Sprintf("round %d", round)))
		}
		out, err := h.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, out)
		if round == 0 {
			first = len(out)
		} else if len(out) > first {
			t.Fatalf("round %d: %d bytes, first rewrite %d", round, len(out), first)
		}
	}
	got := strings.TrimSpace(testutil.Run(t, "hivexget", p, `\Churn\k199`, "v"))
	if got != "round 5" {
		t.Errorf("hivexget = %q", got)
	}
}

// A key found by a lookup in a big list (binary search on disk) is the
// same key the full list later holds: edits through it are kept, and a
// deletion through it is not undone.
func TestLookupThenEditBigList(t *testing.T) {
	dir := t.TempDir()
	p := baseHive(t, dir)
	h, err := hive.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	big, _ := h.Root().CreateSubkey("Big")
	for i := 0; i < 300; i++ {
		big.CreateSubkey(fmt.Sprintf("K%03d", i))
	}
	out, _ := h.Serialize()
	writeFile(t, p, out)

	h, err = hive.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.Lookup(`big\k150`)
	if err != nil {
		t.Fatal(err)
	}
	k.SetValue("mark", hive.RegDword, []byte{5, 0, 0, 0})
	bigKey, _ := h.Lookup("Big")
	if err := bigKey.DeleteSubkey("K151"); err != nil {
		t.Fatal(err)
	}
	out, err = h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, out)
	if got := strings.TrimSpace(testutil.Run(t, "hivexget", p, `\Big\K150`, "mark")); got != "5" {
		t.Errorf("mark = %q", got)
	}
	sh := filepath.Join(dir, "script")
	writeFile(t, sh, []byte("cd \\Big\nls\n"))
	ls := testutil.Run(t, "hivexsh", "-f", sh, p)
	if strings.Contains(ls, "K151") || strings.Count(ls, "K") != 299 {
		t.Errorf("hivexsh ls after delete:\n%s", trunc(ls))
	}
}

// cellBytes reads n bytes at off within the data of the cell at cell.
func cellBytes(file []byte, cell uint32, off, n int) []byte {
	start := 4096 + int(cell) + 4 + off
	if cell == 0xFFFFFFFF || start < 0 || start+n > len(file) {
		return nil
	}
	return file[start : start+n]
}
