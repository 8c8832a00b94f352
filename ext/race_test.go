package ext

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/fsrace"
)

// TestParallelReadersWriters races 6 readers walking and reading a tree
// mkfs.ext4 -d wrote with 2 writers changing their own directories (run
// under -race; readers check every seeded file's bytes on every pass),
// then proves the image with e2fsck -fn and a debugfs rdump of the whole
// tree compared file by file.
func TestParallelReadersWriters(t *testing.T) {
	requireE2fs(t)
	seed := fsrace.Seed(4, 6, 30000)
	src := t.TempDir()
	model := map[string]*node{"lost+found": {kind: 'd'}}
	for p, b := range seed {
		host := filepath.Join(src, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, b, 0o644); err != nil {
			t.Fatal(err)
		}
		model[filepath.Dir(strings.TrimPrefix(p, "/"))] = &node{kind: 'd'}
	}
	img := mkfs(t, "ext4", 32, src)
	v, done := openRW(t, img)
	files, dirs := fsrace.Run(t, v, v, seed, fsrace.Options{Readers: 6, Writers: 2, Ops: 120, Passes: 6, MaxFile: 12000})
	done()
	if t.Failed() {
		return
	}
	for _, d := range dirs {
		model[strings.TrimPrefix(d, "/")] = &node{kind: 'd'}
	}
	for p, b := range files {
		model[strings.TrimPrefix(p, "/")] = &node{kind: 'f', data: b}
	}
	e2fsckClean(t, img)
	checkTree(t, img, model)
}
