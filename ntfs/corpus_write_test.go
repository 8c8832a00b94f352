package ntfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// corpusOps is a workload every corpus volume can take.
var corpusOps = []wop{
	{kind: "mkdir", p: "offvm"},
	{kind: "write", p: "offvm/patch.txt", data: []byte("patched by offvm")},
	{kind: "write", p: "offvm/big.bin", data: pattern(700000, 5)},
	{kind: "create", p: "offvm/empty"},
	{kind: "rename", p: "offvm/empty", q: "offvm-empty-moved"},
	{kind: "link", p: "offvm/patch.txt", q: "offvm-link.txt"},
	{kind: "xattr", p: "offvm/patch.txt", q: "user.Zone.Identifier", data: []byte("[ZoneTransfer]")},
	{kind: "unlink", p: "offvm/big.bin"},
}

// Per-volume extra steps on files that Windows made.
var corpusExtra = map[string][]wop{
	"velociraptor/test.ntfs.raw.gz": {
		{kind: "write", p: "another_file.txt", data: []byte("OVERWRITTEN")},
		{kind: "unlink", p: "just_a_file.txt"},
		{kind: "write", p: "Folder A/Folder B/Hello world text document.txt", data: []byte(" appended"), off: 12},
		{kind: "rename", p: "Folder A/Folder B", q: "Folder B moved"},
	},
	"dfir_ntfs/ntfs3_attrlist.raw.gz": {
		// 1.txt is one of 100 hard links of a file whose $DATA lives in an
		// extension record: an overwrite in place through the attribute list.
		{kind: "write", p: "1.txt", data: []byte("ABCD")},
	},
	"dfir_ntfs/ntfs_index.raw.gz": {
		{kind: "unlink", p: "test_dir/111111111111111.txt"},
		{kind: "write", p: "test_dir/new-in-windows-dir.txt", data: []byte("new")},
	},
}

// TestCorpusWrites applies a workload to each corpus volume through our
// engine and through ntfs-3g, then checks consistency and compares trees.
func TestCorpusWrites(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "setfattr", "attr")
	for _, c := range corpusImages {
		t.Run(c.rel, func(t *testing.T) {
			ops := append(append([]wop(nil), corpusOps...), corpusExtra[c.rel]...)
			ours := corpusVolume(t, c)
			ref := filepath.Join(t.TempDir(), "ref")
			copyFile(t, ours, ref)
			v := openVol(t, ours, 0, Options{})
			mnt, unmount := mount3g(t, ref)
			if r := v.ReadOnlyReason(); r != "" {
				// Both must refuse: ntfs-3g falls back to a read-only mount.
				err := os.Mkdir(filepath.Join(mnt, "probe"), 0o755)
				if err == nil {
					t.Errorf("we refuse writes (%s) but ntfs-3g accepts them", r)
				}
				if _, err := v.Create(v.Root(), "probe", 0o644); !errors.Is(err, syscall.EROFS) {
					t.Errorf("read-only volume: Create gave %v", err)
				}
				t.Logf("read-only as with ntfs-3g: %s", r)
				return
			}
			applyHost(t, mnt, ops)
			unmount()
			applyEngine(t, v, ops)
			checkConsistent(t, ours)
			mnt, unmount = mount3g(t, ref, "ro")
			want := walkHost(t, mnt)
			unmount()
			mnt, unmount = mount3g(t, ours, "ro")
			got := walkHost(t, mnt)
			unmount()
			diffTrees(t, want, got)
			checkTools(t, ours, got)
			checkIcat(t, ours, got)
			removeAllWith3g(t, ours)
		})
	}
}
