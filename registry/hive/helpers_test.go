package hive_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/regtext"
)

// corpusCopy puts a corpus file into dir under name, decompressing .xz
// files, and returns its path.
func corpusCopy(t *testing.T, rel, dir, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	writeFile(t, dst, hive.ReadCorpus(t, rel))
	return dst
}

// hivexExport is `hivexregedit --export` of a hive, with the lines Perl
// printed in Latin-1 (names whose characters are all below U+0100) turned
// into UTF-8 like the others.
func hivexExport(t *testing.T, path, key string) string {
	t.Helper()
	testutil.RequireTool(t, "hivexregedit", "libwin-hivex-perl")
	cmd := exec.Command("hivexregedit", "--export", path, key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hivexregedit --export %s: %v\n%s", path, err, stderr.String())
	}
	lines := strings.SplitAfter(string(out), "\n")
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

// ourExport prints a key the way hivexregedit --export does.
func ourExport(t *testing.T, k *hive.Key) string {
	t.Helper()
	var b bytes.Buffer
	if err := regtext.Export(&b, k, regtext.ExportOptions{}); err != nil {
		t.Fatalf("export: %v", err)
	}
	return b.String()
}

// firstDiff shows where two exports part.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return "line " + itoa(i+1) + ":\n  " + trunc(la[i]) + "\n  " + trunc(lb[i])
		}
	}
	return "lengths differ: " + itoa(len(la)) + " vs " + itoa(len(lb)) + " lines"
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
