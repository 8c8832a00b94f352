package hive_test

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

// countingReader counts the bytes and calls read through it.
type countingReader struct {
	r            *bytes.Reader
	mu           sync.Mutex
	bytes, calls int64
}

func newCounting(b []byte) *countingReader { return &countingReader{r: bytes.NewReader(b)} }

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.bytes += int64(len(p))
	c.calls++
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// exportOrErr is our export of a hive, or the error reading it stopped at.
func exportOrErr(t *testing.T, h *hive.Hive) string {
	t.Helper()
	if err := walk(h.Root(), func(*hive.Key) {}); err != nil {
		return "error: " + err.Error()
	}
	return ourExport(t, h.Root())
}

// Every corpus hive reads the same lazily as whole: clean ones through the
// lazy path, dirty ones through the replay fallback, broken ones with the
// same first error.
func TestLazyCorpusSameAsParse(t *testing.T) {
	cases := []struct {
		rel  string
		logs []string
		lazy bool // expected to stay lazy (clean)
		// broken: bad hive bins. Parse stops trusting the file at the first
		// bad hbin header; the lazy path checks only the bins it meets, so
		// both must find a defect, refuse to serialize, but may read
		// different amounts before the error.
		broken bool
	}{
		{"regipy/SYSTEM.xz", nil, true, false},
		{"regipy/SYSTEM_WIN_10_1709.xz", nil, false, false},
		{"regipy/SAM.xz", nil, true, false},
		{"regipy/SECURITY.xz", nil, true, false},
		{"regipy/BCD.xz", nil, true, false},
		{"regipy/NTUSER.DAT.xz", nil, true, false},
		{"regipy/SYSTEM_B.xz", []string{"regipy/SYSTEM_B.LOG1.xz", "regipy/SYSTEM_B.LOG2.xz"}, false, false},
		{"regipy/UsrClass.dat.xz", []string{"regipy/UsrClass.dat.LOG1.xz", "regipy/UsrClass.dat.LOG2.xz"}, false, false},
		{"regipy/transactions_NTUSER.DAT.xz", []string{"regipy/transactions_ntuser.dat.log1.xz", "regipy/transactions_ntuser.dat.log2.xz"}, false, false},
		{"regipy/corrupted_system_hive.xz", nil, false, true},
		{"ez-registry/NTUSER1.DAT", nil, true, false},
		{"ez-registry/SAM", nil, true, false},
		{"ez-registry/SECURITY", nil, false, false}, // dirty
		{"ez-registry/BCD", nil, true, false},
		{"ez-registry/SAM_hasBigEndianDWord", nil, true, false},
		{"ez-registry/SAMBadHBinHeader", nil, false, true},
		{"plaso/100_sub_keys.hiv", nil, true, false},
		{"plaso/NTUSER-WIN7.DAT", nil, true, false},
		{"plaso/corrupt_sub_key_list.hiv", nil, false, true},
		{"dfwinreg/NTUSER.DAT", nil, true, false},
		{"hivex/minimal", nil, true, false},
		{"hivex/special", nil, true, false},
		{"hivex/rlenvalue_test_hive", nil, true, false},
		{"python-registry/REORGANIZED_VALUES_TESTS", nil, true, false},
		{"python-registry/UNICODE_TESTS", nil, true, false},
		{"python-registry/issue22.hive", nil, true, false},
	}
	for _, c := range cases {
		t.Run(c.rel, func(t *testing.T) {
			t.Parallel()
			base := hive.ReadCorpus(t, c.rel)
			var logs [][]byte
			for _, l := range c.logs {
				logs = append(logs, hive.ReadCorpus(t, l))
			}
			// Parse may replay into its slice: give each path its own copies.
			copies := func() [][]byte {
				var out [][]byte
				for _, l := range logs {
					out = append(out, bytes.Clone(l))
				}
				return out
			}
			whole, werr := hive.Parse(bytes.Clone(base), copies()...)
			cr := newCounting(bytes.Clone(base))
			lazy, lerr := hive.ParseReaderAt(cr, int64(len(base)), copies()...)
			if (werr == nil) != (lerr == nil) {
				t.Fatalf("Parse: %v; ParseReaderAt: %v", werr, lerr)
			}
			if werr != nil {
				if !errors.Is(lerr, hive.ErrCorrupt) && !errors.Is(lerr, hive.ErrDirty) {
					t.Fatalf("error %v wraps neither ErrCorrupt nor ErrDirty", lerr)
				}
				t.Logf("both refuse: %v", lerr)
				return
			}
			opened := cr.bytes
			if c.lazy && opened > 64<<10 && opened > int64(len(base))/2 {
				t.Errorf("clean hive: %d of %d bytes read at open", opened, len(base))
			}
			if !c.lazy && !c.broken && opened != int64(len(base)) {
				t.Errorf("dirty or broken hive: only %d of %d bytes read at open, want all", opened, len(base))
			}
			if lazy.Replayed().Dirty != whole.Replayed().Dirty || lazy.Replayed().Entries != whole.Replayed().Entries {
				t.Errorf("replay %+v, Parse's %+v", lazy.Replayed(), whole.Replayed())
			}
			want, got := exportOrErr(t, whole), exportOrErr(t, lazy)
			if c.broken {
				brokenAlike(t, whole, lazy, want, got)
				return
			}
			if got != want {
				t.Fatalf("lazy reading differs from Parse's: %s", firstDiff(got, want))
			}
			t.Logf("%d of %d bytes read at open, %d after a full walk", opened, len(base), cr.bytes)
			_, serr := lazy.Serialize()
			_, swerr := whole.Serialize()
			if (serr == nil) != (swerr == nil) {
				t.Errorf("Serialize: lazy %v, whole %v", serr, swerr)
			}
		})
	}
}

// brokenAlike checks that both readings of a broken hive find a defect
// wrapping ErrCorrupt, and that neither serializes.
func brokenAlike(t *testing.T, whole, lazy *hive.Hive, want, got string) {
	t.Helper()
	for _, r := range []struct {
		name   string
		h      *hive.Hive
		export string
	}{{"Parse", whole, want}, {"ParseReaderAt", lazy, got}} {
		var errs []error
		if strings.HasPrefix(r.export, "error: ") {
			errs = append(errs, errors.New(r.export))
		}
		errs = append(errs, r.h.Problems()...)
		if len(errs) == 0 {
			t.Errorf("%s read a broken hive without error", r.name)
		}
		for _, p := range r.h.Problems() {
			if !errors.Is(p, hive.ErrCorrupt) {
				t.Errorf("%s: problem %v does not wrap ErrCorrupt", r.name, p)
			}
		}
		if _, err := r.h.Serialize(); err == nil {
			t.Errorf("%s: a broken hive was serialized", r.name)
		}
		t.Logf("%s: %v", r.name, errs)
	}
}

// One lookup in a clean 11 MiB SYSTEM hive reads a small part of it, and
// finds what hivexget finds; the lazy hive still serializes to a file hivex
// reads as the original.
func TestLazyReadsLittle(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	const key, name = `ControlSet001\Control\ComputerName\ComputerName`, "ComputerName"
	base := hive.ReadCorpus(t, "regipy/SYSTEM.xz")
	dir := t.TempDir()
	orig := filepath.Join(dir, "SYSTEM")
	writeFile(t, orig, base)
	cr := newCounting(base)
	h, err := hive.ParseReaderAt(cr, int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := v.Data()
	if err != nil {
		t.Fatal(err)
	}
	got := utf16ToString(data)
	want := strings.TrimSpace(testutil.Run(t, "hivexget", orig, `\`+key, name))
	if got != want {
		t.Fatalf("%s = %q, hivexget says %q", name, got, want)
	}
	t.Logf("one lookup read %d of %d bytes (%.2f%%) in %d reads", cr.bytes, len(base), 100*float64(cr.bytes)/float64(len(base)), cr.calls)
	if cr.bytes*20 >= int64(len(base)) {
		t.Errorf("one lookup read %d of %d bytes, want under 5%%", cr.bytes, len(base))
	}
	out, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours")
	writeFile(t, ours, out)
	if a, b := hivexExport(t, ours, `\`), hivexExport(t, orig, `\`); a != b {
		t.Fatalf("hivex reads the lazily opened, serialized hive differently: %s", firstDiff(a, b))
	}
	// An edit to a freshly opened lazy hive is written out with the rest.
	h, err = hive.ParseReaderAt(newCounting(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	k, err = h.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetValue(name, hive.RegSz, []byte("L\x00A\x00Z\x00Y\x00\x00\x00")); err != nil {
		t.Fatal(err)
	}
	if out, err = h.Serialize(); err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(dir, "edited")
	writeFile(t, edited, out)
	if got := strings.TrimSpace(testutil.Run(t, "hivexget", edited, `\`+key, name)); got != "LAZY" {
		t.Errorf("after the edit hivexget says %q, want LAZY", got)
	}
	if a, b := strings.Count(hivexExport(t, edited, `\`), "\n["), strings.Count(hivexExport(t, orig, `\`), "\n["); a != b {
		t.Errorf("edited hive has %d keys, the original %d", a, b)
	}
}

func utf16ToString(b []byte) string {
	var r []rune
	for i := 0; i+1 < len(b); i += 2 {
		c := rune(b[i]) | rune(b[i+1])<<8
		if c == 0 {
			break
		}
		r = append(r, c)
	}
	return string(r)
}

// failingReader serves the first n bytes of b and fails past them.
type failingReader struct {
	b   []byte
	n   int64
	err error
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, f.err
	}
	return copy(p, f.b[off:]), nil
}

// A hive cut short, or whose reads fail, opens; the keys whose cells are
// present read, and the first cell needing a missing part gives an error
// saying so (ErrCorrupt for a short file, EIO for a failing read).
func TestLazyTruncated(t *testing.T) {
	base := hive.ReadCorpus(t, "regipy/SYSTEM.xz")
	half := int64(len(base) / 2)
	cases := []struct {
		name string
		r    func() (io.ReaderAt, int64)
		want error
		msg  string
	}{
		{"file cut at half", func() (io.ReaderAt, int64) {
			return bytes.NewReader(base[:half]), half
		}, hive.ErrCorrupt, "past the end of the file"},
		{"file shorter than its size", func() (io.ReaderAt, int64) {
			return bytes.NewReader(base[:half]), int64(len(base))
		}, hive.ErrCorrupt, "file ends after"},
		{"reads fail past half", func() (io.ReaderAt, int64) {
			return &failingReader{b: base, n: half, err: errors.New("disk gone")}, int64(len(base))
		}, syscall.EIO, "disk gone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, size := c.r()
			h, err := hive.ParseReaderAt(r, size)
			if err != nil {
				t.Fatalf("root key is in the first half, yet: %v", err)
			}
			keys := 0
			werr := walk(h.Root(), func(*hive.Key) { keys++ })
			if werr == nil {
				t.Fatal("walked a half hive without error")
			}
			if !errors.Is(werr, c.want) || !strings.Contains(werr.Error(), c.msg) {
				t.Fatalf("error %v, want %v mentioning %q", werr, c.want, c.msg)
			}
			if !strings.Contains(werr.Error(), "cell at 0x") {
				t.Errorf("error %v does not name the cell", werr)
			}
			t.Logf("%d keys read, then: %v", keys, werr)
			if _, err := h.Serialize(); err == nil {
				t.Error("a truncated hive was serialized")
			}
		})
	}
}

// The dirty SYSTEM_B with its logs reads through ParseReaderAt exactly as
// through Open (which TestCorpusReplay checks against hivex).
func TestLazyDirtyReplays(t *testing.T) {
	dir := t.TempDir()
	p := corpusCopy(t, "regipy/SYSTEM_B.xz", dir, "SYSTEM")
	corpusCopy(t, "regipy/SYSTEM_B.LOG1.xz", dir, "SYSTEM.LOG1")
	corpusCopy(t, "regipy/SYSTEM_B.LOG2.xz", dir, "SYSTEM.LOG2")
	whole, err := hive.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	base := hive.ReadCorpus(t, "regipy/SYSTEM_B.xz")
	l1 := bytes.Clone(hive.ReadCorpus(t, "regipy/SYSTEM_B.LOG1.xz"))
	l2 := bytes.Clone(hive.ReadCorpus(t, "regipy/SYSTEM_B.LOG2.xz"))
	cr := newCounting(bytes.Clone(base))
	h, err := hive.ParseReaderAt(cr, int64(len(base)), l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.Replayed(); !r.Dirty || r.Format != hive.LogNew || r.Entries != 24 || r.Pages != 315 {
		t.Fatalf("replay %+v, want dirty, new format, 24 entries, 315 pages", r)
	}
	if cr.bytes != int64(len(base)) {
		t.Errorf("read %d bytes of a %d-byte dirty hive, want it whole", cr.bytes, len(base))
	}
	if a, b := ourExport(t, h.Root()), ourExport(t, whole.Root()); a != b {
		t.Fatalf("%s", firstDiff(a, b))
	}
	k, err := h.Lookup(`ControlSet001\Control\ComputerName\ComputerName`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value("ComputerName")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := v.Data()
	if got := utf16ToString(d); got != "DESKTOP-PM6C56D" {
		t.Errorf("ComputerName %q after replay", got)
	}
}

// TestHasSubkeys: the answer the registry view's lookups rely on, for a
// key read lazily (list not decoded), after edits, and once deleted.
func TestHasSubkeys(t *testing.T) {
	h := hive.New("ROOT")
	parent, err := h.Root().CreateSubkey("Parent")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"A", "B"} {
		if _, err := parent.CreateSubkey(n); err != nil {
			t.Fatal(err)
		}
	}
	data, err := h.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := hive.ParseReaderAt(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	key := func(path string) *hive.Key {
		k, err := lazy.Root().Lookup(path)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p := key(`Parent`)
	if !p.HasSubkeys() {
		t.Errorf("a key with two subkeys, list not decoded: HasSubkeys() = false")
	}
	a := key(`Parent\A`)
	steps := []struct {
		what string
		edit func() error
		key  *hive.Key
		want bool
	}{
		{"a key with two subkeys, list decoded", nil, p, true},
		{"a leaf key", nil, a, false},
		{"the leaf after a subkey is made in it", func() error { _, err := a.CreateSubkey("C"); return err }, a, true},
		{"the leaf after that subkey is deleted", func() error { return a.DeleteSubkey("C") }, a, false},
		{"the parent after both its subkeys are deleted", func() error {
			if err := p.DeleteSubkey("A"); err != nil {
				return err
			}
			return p.DeleteSubkey("B")
		}, p, false},
		{"a deleted key", nil, a, false},
	}
	for _, s := range steps {
		if s.edit != nil {
			if err := s.edit(); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
		}
		if got := s.key.HasSubkeys(); got != s.want {
			t.Errorf("%s: HasSubkeys() = %v, want %v", s.what, got, s.want)
		}
	}
}
