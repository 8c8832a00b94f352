package hive_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/regtext"
)

// saveRound is one open-edit-save of a hive: the edits as .reg text (made
// by regtext here and by hivexregedit --merge on the reference copy), and
// edits hivex cannot make (class names), checked on their own.
type saveRound struct {
	reg   string
	extra func(t *testing.T, h *hive.Hive)
}

// TestSaveInPlace: a small change to a real Windows hive (regipy's
// NTUSER.DAT) is written in place, only the bins that hold changed cells
// and new bins at the end; the file then reads, through hivexregedit,
// regfexport (libregf) and python3-hivex, as the same hive edited by
// hivexregedit --merge; and repeated saves do not make it grow beyond
// what the data needs.
func TestSaveInPlace(t *testing.T) {
	testutil.RequireTool(t, "regfexport", "libregf-utils")
	many := "[\\Software\\Offvm]\n\n[\\Software\\Offvm\\Many]\n\n"
	for i := 0; i < 1100; i++ { // more than one leaf: an ri list
		many += fmt.Sprintf("[\\Software\\Offvm\\Many\\K%04d]\n\"n\"=dword:%08x\n\n", i, i)
	}
	big := func(b byte, n int) string { return hexList(bytes.Repeat([]byte{b}, n)) }
	cases := []struct {
		name   string
		lazy   bool // read through OpenReaderAt, as the mount does; else hive.Open
		rounds []saveRound
		grow   int // bytes the file may grow by over all rounds
	}{
		{name: "set, replace and delete values", lazy: true, grow: 0, rounds: []saveRound{{reg: `Windows Registry Editor Version 5.00

[\Console]
"FontSize"=dword:00100000
"FaceName"="a longer face name than the one Windows left there"
"CursorSize"=-
@="default value"

[\Environment]
"OFFVM"="set by offvm"
`}}},
		{name: "new keys, an ri list", grow: 200 << 10, rounds: []saveRound{{reg: "Windows Registry Editor Version 5.00\n\n" + many}}},
		{name: "delete subtrees", lazy: true, grow: 0, rounds: []saveRound{{reg: `Windows Registry Editor Version 5.00

[-\Software\WinRAR]

[-\Printers]

[\Software\Adobe]
"after"=dword:00000001
`}}},
		{name: "class names", lazy: true, grow: 4096, rounds: []saveRound{{reg: "Windows Registry Editor Version 5.00\n\n[\\Console]\n\"x\"=dword:00000001\n",
			extra: func(t *testing.T, h *hive.Hive) {
				for _, p := range []string{"Console", `Control Panel`} {
					k, err := h.Lookup(p)
					if err != nil {
						t.Fatal(err)
					}
					if err := k.SetClass(utf16le("class of " + p)); err != nil {
						t.Fatal(err)
					}
				}
			}}}},
		{name: "big values replaced and removed over rounds", lazy: true, grow: 64 << 10, rounds: []saveRound{
			{reg: "Windows Registry Editor Version 5.00\n\n[\\Offvm]\n\"big\"=hex:" + big(1, 40000) + "\n\"small\"=\"s\"\n"},
			{reg: "Windows Registry Editor Version 5.00\n\n[\\Offvm]\n\"big\"=hex:" + big(2, 40000) + "\n\"small\"=\"t\"\n"},
			{reg: "Windows Registry Editor Version 5.00\n\n[\\Offvm]\n\"big\"=-\n\"other\"=hex:" + big(3, 20000) + "\n"},
		}},
		{name: "churn: six rounds of the same values", lazy: true, grow: 8192, rounds: churn(6)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ours := corpusCopy(t, "regipy/NTUSER.DAT.xz", dir, "ours")
			want := corpusCopy(t, "regipy/NTUSER.DAT.xz", dir, "want")
			size0 := fileSize(t, ours)
			var classes []string
			for i, r := range tc.rounds {
				saveRoundInPlace(t, ours, tc.lazy, r)
				hivexMerge(t, want, r.reg)
				if r.extra != nil {
					classes = append(classes, "Console", "Control Panel")
				}
				if i == 0 || i == len(tc.rounds)-1 {
					compareExports(t, ours, want)
				}
			}
			if grew := fileSize(t, ours) - size0; grew > int64(tc.grow) {
				t.Errorf("the file grew by %d bytes over %d rounds, want at most %d", grew, len(tc.rounds), tc.grow)
			}
			for _, p := range classes {
				if got := regfClasses(t, ours, p)[p]; got != "class of "+p {
					t.Errorf("regfexport: class of %s is %q", p, got)
				}
			}
			checkPyHivex(t, ours, want)
			checkSecurityCells(t, ours)
			h, err := hive.Open(ours)
			if err != nil {
				t.Fatal(err)
			}
			checkWithRegparser(t, ours, h)
		})
	}
}

// churn is rounds that set the same values to data of changing sizes.
func churn(n int) []saveRound {
	var out []saveRound
	for r := 0; r < n; r++ {
		var b strings.Builder
		b.WriteString("Windows Registry Editor Version 5.00\n\n[\\Churn]\n")
		for v := 0; v < 20; v++ {
			fmt.Fprintf(&b, "\"v%d\"=\"%s\"\n", v, strings.Repeat("x", 1+(r*7+v*13)%90))
		}
		out = append(out, saveRound{reg: b.String()})
	}
	return out
}

// saveRoundInPlace opens the hive file, makes the round's edits, and
// writes SaveChanges' writes into the file, which must be in place.
func saveRoundInPlace(t *testing.T, path string, lazy bool, r saveRound) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h *hive.Hive
	if lazy {
		fi, _ := f.Stat()
		h, err = hive.OpenReaderAt(f, fi.Size(), nil)
	} else {
		h, err = hive.Open(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	ops, err := regtext.Parse([]byte(r.reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := regtext.Apply(h.Root(), ops, ""); err != nil {
		t.Fatal(err)
	}
	if r.extra != nil {
		r.extra(t, h)
	}
	s, _, err := h.SaveChanges()
	if err != nil {
		t.Fatal(err)
	}
	if s.Whole {
		t.Fatalf("the save is whole, want in place")
	}
	if n, fi := s.Bytes(), fileSize(t, path); int64(n) > fi/2 {
		t.Errorf("the save writes %d bytes of a %d-byte file", n, fi)
	}
	for _, w := range s.Writes {
		if _, err := f.WriteAt(w.Data, w.Off); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := hive.ResetLog(s.Header, hive.LogNew); err != nil {
		t.Errorf("ResetLog of the new base block: %v", err)
	}
}

// compareExports: hivexregedit --export and regfexport (values sorted by
// name in each key, class lines left out: hivex cannot write them) read
// the two files as the same hive.
func compareExports(t *testing.T, ours, want string) {
	t.Helper()
	if got, exp := hivexExport(t, ours, `\`), hivexExport(t, want, `\`); got != exp {
		t.Fatalf("hivexregedit --export differs from hivex's own edit: %s", firstDiff(got, exp))
	}
	if got, exp := regfNormal(t, ours), regfNormal(t, want); got != exp {
		t.Fatalf("regfexport differs from hivex's own edit: %s", firstDiff(got, exp))
	}
}

// regfNormal is regfexport's listing of a whole hive, each key's values in
// name order (their index left out), without class names.
func regfNormal(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("regfexport", path).CombinedOutput()
	if err != nil {
		t.Fatalf("regfexport %s: %v\n%s", path, err, trunc(string(out)))
	}
	var keys []string
	var head []string
	var vals []string
	flush := func() {
		sort.Strings(vals)
		keys = append(keys, strings.Join(append(head, vals...), "\n"))
		head, vals = nil, nil
	}
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "Key path: "):
			flush()
			head = []string{l}
		case strings.HasPrefix(l, "Value: "):
			rest := strings.TrimPrefix(l, "Value: ")
			if _, after, ok := strings.Cut(rest, " "); ok {
				rest = after
			}
			vals = append(vals, rest)
		case l == "" || strings.HasPrefix(l, "Class name: "):
		case len(vals) > 0:
			vals[len(vals)-1] += "\n" + l
		default:
			head = append(head, l)
		}
	}
	flush()
	return strings.Join(keys, "\n")
}

// checkPyHivex walks both files with python3-hivex: the same keys, values
// and data.
func checkPyHivex(t *testing.T, ours, want string) {
	t.Helper()
	py := `import hivex,sys,hashlib
h=hivex.Hivex(sys.argv[1])
out=[]
def walk(n,p):
    vs=sorted((h.value_key(v),h.value_value(v)) for v in h.node_values(n))
    out.append(p+" "+hashlib.sha256(repr(vs).encode()).hexdigest())
    for c in h.node_children(n): walk(c,p+"\\"+h.node_name(c))
walk(h.root(),"")
print(len(out), hashlib.sha256("\n".join(out).encode()).hexdigest())
`
	run := func(p string) string {
		out, err := exec.Command("/usr/bin/python3", "-c", py, p).CombinedOutput()
		if err != nil {
			t.Skipf("python3-hivex: %v\n%s", err, out)
		}
		return string(out)
	}
	if got, exp := run(ours), run(want); got != exp {
		t.Errorf("python3-hivex walks %s, hivex's own edit %s", got, exp)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestSaveWholeWhenNotInPlace: a replayed hive, a second save and a big
// change are written whole, as Serialize lays them out.
func TestSaveWholeWhenNotInPlace(t *testing.T) {
	dir := t.TempDir()
	p := corpusCopy(t, "regipy/NTUSER.DAT.xz", dir, "ntuser")
	h, err := hive.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := h.Root().CreatePath(`Offvm`)
	k.SetValue("a", hive.RegDword, []byte{1, 0, 0, 0})
	s, _, err := h.SaveChanges()
	if err != nil || s.Whole {
		t.Fatalf("first save: whole=%v, %v; want in place", s.Whole, err)
	}
	k.SetValue("b", hive.RegDword, []byte{2, 0, 0, 0})
	if s, _, err = h.SaveChanges(); err != nil || !s.Whole {
		t.Fatalf("second save: whole=%v, %v; want whole", s.Whole, err)
	}
	out := filepath.Join(dir, "second")
	writeFile(t, out, s.Writes[0].Data)
	if got := strings.TrimSpace(testutil.Run(t, "hivexget", out, `\Offvm`, "b")); got != "2" {
		t.Errorf("hivexget b = %q", got)
	}

	h, err = hive.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	k, _ = h.Root().CreatePath(`Offvm\Big`)
	k.SetValue("blob", hive.RegBinary, bytes.Repeat([]byte{9}, 600<<10))
	if s, _, err = h.SaveChanges(); err != nil || !s.Whole {
		t.Fatalf("a change bigger than half the hive: whole=%v, %v; want whole", s.Whole, err)
	}

	sys := corpusCopy(t, "regipy/SYSTEM_B.xz", dir, "SYSTEM")
	logs := [][]byte{hive.ReadCorpus(t, "regipy/SYSTEM_B.LOG1.xz"), hive.ReadCorpus(t, "regipy/SYSTEM_B.LOG2.xz")}
	b, _ := os.ReadFile(sys)
	h, err = hive.Parse(b, logs...)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Replayed().Dirty {
		t.Fatalf("SYSTEM_B is expected dirty")
	}
	h.Root().SetValue("x", hive.RegDword, []byte{1, 0, 0, 0})
	if s, _, err = h.SaveChanges(); err != nil || !s.Whole {
		t.Fatalf("a replayed hive: whole=%v, %v; want whole", s.Whole, err)
	}
}

// checkSecurityCells walks the file's raw cells (not through package
// hive): every key's sk cell is in the circular sk list, the list's links
// agree both ways, and each sk cell counts exactly the keys pointing at it.
func checkSecurityCells(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	cell := func(off uint32) []byte {
		p := 4096 + int(off)
		if off == 0xFFFFFFFF || p+4 > len(b) {
			t.Fatalf("cell 0x%x outside the file", off)
		}
		n := -int(int32(le.Uint32(b[p:])))
		if n < 8 || p+n > len(b) {
			t.Fatalf("cell 0x%x: size %d (free or broken)", off, -n)
		}
		return b[p+4 : p+n]
	}
	refs := map[uint32]int{}
	var walk func(off uint32, depth int)
	var list func(off uint32, depth int)
	list = func(off uint32, depth int) {
		c := cell(off)
		n := int(le.Uint16(c[2:]))
		stride := 8
		if string(c[:2]) == "li" || string(c[:2]) == "ri" {
			stride = 4
		}
		for i := 0; i < n; i++ {
			e := le.Uint32(c[4+i*stride:])
			if string(c[:2]) == "ri" {
				list(e, depth)
			} else {
				walk(e, depth+1)
			}
		}
	}
	walk = func(off uint32, depth int) {
		if depth > 512 {
			t.Fatalf("key cells nested too deep")
		}
		nk := cell(off)
		if string(nk[:2]) != "nk" {
			t.Fatalf("cell 0x%x is %q, want nk", off, nk[:2])
		}
		refs[le.Uint32(nk[44:])]++
		if le.Uint32(nk[20:]) > 0 {
			list(le.Uint32(nk[28:]), depth)
		}
	}
	walk(le.Uint32(b[36:]), 0)
	first := le.Uint32(b[36:])
	start := le.Uint32(cell(first)[44:])
	seen := map[uint32]bool{}
	for off := start; !seen[off]; {
		seen[off] = true
		sk := cell(off)
		if string(sk[:2]) != "sk" {
			t.Fatalf("sk list reaches 0x%x, a %q cell", off, sk[:2])
		}
		next := le.Uint32(sk[4:])
		if back := le.Uint32(cell(next)[8:]); back != off {
			t.Fatalf("sk 0x%x links to 0x%x, which links back to 0x%x", off, next, back)
		}
		if got, want := int(le.Uint32(sk[12:])), refs[off]; got != want {
			t.Errorf("sk 0x%x counts %d references, %d keys point at it", off, got, want)
		}
		off = next
	}
	for off := range refs {
		if !seen[off] {
			t.Errorf("sk 0x%x is used by keys but not in the sk list", off)
		}
	}
}
