package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// The ratio is taken pair by pair: a slow disk in one pair slows both
// sides of that pair and leaves its ratio alone.
func TestSummarizePairs(t *testing.T) {
	r := &Record{PeerS: []float64{1, 4, 2}, OffvmS: []float64{2, 2, 1}}
	summarize(r)
	if r.Ratio != 2 || r.RatioMin != 0.5 || r.RatioMax != 2 {
		t.Errorf("ratio %v (%v–%v), want 2 (0.5–2)", r.Ratio, r.RatioMin, r.RatioMax)
	}
	if r.PeerMedian != 2 || r.OffvmMedian != 2 || r.OffvmMin != 1 || r.OffvmMax != 2 {
		t.Errorf("medians peer %v offvm %v (%v–%v)", r.PeerMedian, r.OffvmMedian, r.OffvmMin, r.OffvmMax)
	}
}

func TestRewriteReadme(t *testing.T) {
	p := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(p, []byte("a\n"+beginMark+"\nold table\n"+endMark+"\nz\n"), 0o644)
	if err := rewriteReadme(p, "new\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if want := "a\n" + beginMark + "\nnew\n" + endMark + "\nz\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	os.WriteFile(p, []byte("no marks"), 0o644)
	if err := rewriteReadme(p, "x"); err == nil || !strings.Contains(err.Error(), "no") {
		t.Errorf("README without marks: %v", err)
	}
}

// A figure whose sides read different bytes is refused, not timed.
func TestMeasureRefusesDifferentWork(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("same"), 0o644)
	os.WriteFile(filepath.Join(dir, "b"), []byte("other"), 0o644)
	f := &figure{id: "x", paired: true, pairs: 2, warmup: 1, sameOutput: true,
		roots: [2]string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}, run: [2]string{`cat "$R"`, `cat "$R"`}}
	if _, err := f.measure(); err == nil || !strings.Contains(err.Error(), "different bytes") {
		t.Fatalf("different bytes: %v", err)
	}
	f.roots[1] = f.roots[0]
	rec, err := f.measure()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.PeerS) != 2 || len(rec.OffvmS) != 2 || rec.BytesOffvm != 4 {
		t.Errorf("record %+v", rec)
	}
	f.check = `echo $SIDE`
	if _, err := f.measure(); err == nil || !strings.Contains(err.Error(), "check printed") {
		t.Errorf("check differing between sides: %v", err)
	}
}

// A label with a pipe (a shell pipeline) stays one table cell.
func TestMarkdownEscapesPipes(t *testing.T) {
	b := &Bench{Figures: []Record{{Label: "find | xargs", Peer: "ntfs-3g", PeerS: []float64{2}, OffvmS: []float64{1}, Unit: "s"}}}
	summarize(&b.Figures[0])
	got := markdown(b)
	if !strings.Contains(got, `| find \| xargs | ntfs-3g | 2.000s | 1.000s | 2.00 (2.00–2.00) | 1 |`) {
		t.Errorf("table:\n%s", got)
	}
}

// Values a script measured become a single record; a failed measurement
// (nothing, or not a number) is refused, never recorded as zero.
func TestValueRecord(t *testing.T) {
	rec, err := valueRecord("memory-peak", "peak RSS", "MB", []string{"150", "162.5", "149"})
	if err != nil {
		t.Fatal(err)
	}
	summarize(rec)
	if rec.OffvmMedian != 150 || rec.OffvmMin != 149 || rec.OffvmMax != 162.5 || rec.Peer != "" {
		t.Errorf("record %+v", rec)
	}
	b := &Bench{Figures: []Record{*rec}}
	if got := markdown(b); !strings.Contains(got, "| peak RSS | | | 150MB (149–162MB) | | 3 runs |") {
		t.Errorf("table:\n%s", got)
	}
	for _, bad := range [][]string{nil, {""}, {"12 MB"}, {"NaN"}, {"+Inf"}} {
		if _, err := valueRecord("x", "x", "MB", bad); err == nil {
			t.Errorf("values %q accepted", bad)
		}
	}
	if _, err := valueRecord("", "x", "MB", []string{"1"}); err == nil {
		t.Error("a record without an id accepted")
	}
}
