package fat

import (
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/fsrace"
)

// TestParallelReadersWriters races 6 readers walking and reading a tree
// mcopy wrote with 2 writers changing their own directories (run under
// -race), then proves the image with fsck.fat -n, mdir and mcopy.
func TestParallelReadersWriters(t *testing.T) {
	requireTools(t)
	for _, f := range formatNamed("fat16-512", "fat32-4096") {
		t.Run(f.name, func(t *testing.T) { raceAndCheck(t, f, Options{}) })
	}
}

// raceAndCheck is TestParallelReadersWriters' run on one format, with the
// volume opened with opts.
func raceAndCheck(t *testing.T, f format, opts Options) {
	t.Helper()
	img := mkfs(t, f, "")
	seed := fsrace.Seed(4, 6, 20000)
	src := t.TempDir()
	m := newModel()
	for p, b := range seed {
		host := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m.dirs[path.Dir(p)] = true
	}
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		mtools(t, "mcopy", "-s", "-i", img, filepath.Join(src, e.Name()), "::")
	}
	v, err := Open(openDev(t, img, 0, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	files, dirs := fsrace.Run(t, v, v, seed, fsrace.Options{Readers: 6, Writers: 2, Ops: 120, Passes: 6, MaxFile: 3 * int(v.g.clusterSize)})
	if t.Failed() {
		return
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		m.dirs[d] = true
	}
	m.files = files
	checkMtools(t, img, m)
}
