package ext

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestCorpus reads the ext2 file systems inside the shared corpus images
// (made by others, converted to raw by qemu-img) and compares them with
// what debugfs rdump extracts from the same raw image.
func TestCorpus(t *testing.T) {
	requireE2fs(t)
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	tests := []struct {
		file, label string
	}{
		{"dfvfs/ext2.vhd", "ext2_test"},
		{"dfvfs/ext2.vmdk", "ext2_test"},
		{"dfvfs/ext2.qcow2", "ext2_test"},
		{"plaso/image.vhd", ""},
		{"plaso/image.vmdk", ""},
		{"plaso/image.qcow2", ""},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.file, "/", "_"), func(t *testing.T) {
			src := testutil.Corpus(t, tt.file)
			dir := t.TempDir()
			raw := filepath.Join(dir, "fs.raw")
			testutil.Run(t, "qemu-img", "convert", "-O", "raw", src, raw)
			out := filepath.Join(dir, "rdump")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			debugfs(t, raw, "rdump / "+out, false)
			v := openImage(t, raw)
			if v.Type() != "ext2" || v.Label() != tt.label || v.NeedsRecovery() {
				t.Errorf("type %q label %q recovery %v", v.Type(), v.Label(), v.NeedsRecovery())
			}
			if n := compareTree(t, v, out, compareOpts{}); n < 5 {
				t.Errorf("only %d paths", n)
			}
			compareDebugfs(t, v, raw, "/")
			compareDebugfs(t, v, raw, "/a_directory")
		})
	}
}
