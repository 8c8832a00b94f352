package ntfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// A directory pushed into an $ATTRIBUTE_LIST the way a long-lived
// Windows volume pushes WinSxS there: it grows while free space is
// fragmented, so each new index block lands in its own hole and the
// $INDEX_ALLOCATION runlist outgrows the directory's record.

func winsxsName(i int) string {
	return fmt.Sprintf("amd64_microsoft-windows-servicingstack-component-with-a-long-name_31bf3856ad364e35_10.0.17763.%05d_none_%016x", i, uint64(i)*0x9e3779b97f4a7c15)
}

// fragmentedDirImage grows /Windows/WinSxS through ntfs-3g, 1000 names
// per mount, over fragmented free space until ntfsinfo shows its
// $INDEX_ALLOCATION spilling into an extension record; it returns the
// image and the number of names.
func fragmentedDirImage(t *testing.T) (string, int) {
	t.Helper()
	img := mkntfsImage(t, t.TempDir(), 32, 4096)
	mnt, unmount := mount3g(t, img)
	fragmentFreeSpace(t, mnt)
	for _, d := range []string{"Windows/WinSxS", "Windows/Temp"} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(mnt, "Windows/Temp/setup.log"), []byte("setup\r\n"), 0o644)
	unmount()
	n := 0
	for !allocationSpills(testutil.Run(t, "ntfsinfo", "-F", "/Windows/WinSxS", img)) {
		if n >= 10000 {
			t.Fatalf("WinSxS has no $ATTRIBUTE_LIST after %d names:\n%s", n, testutil.Run(t, "ntfsinfo", "-F", "/Windows/WinSxS", img))
		}
		mnt, unmount := mount3g(t, img)
		for end := n + 1000; n < end; n++ {
			if err := os.WriteFile(filepath.Join(mnt, "Windows/WinSxS", winsxsName(n)), nil, 0o644); err != nil {
				t.Fatalf("ntfs-3g: name %d: %v", n, err)
			}
		}
		unmount()
	}
	checkConsistent(t, img)
	return img, n
}

// TestFragmentedDirectoryWrites runs the write workload in a directory
// that fragmentation forced into an $ATTRIBUTE_LIST, through our engine
// and through ntfs-3g on a copy, deleting and adding hundreds of names
// besides; then ntfsinfo still shows the list, ntfsresize is clean, the
// ntfs-3g trees match, sleuthkit agrees and ntfs-3g deletes everything.
func TestFragmentedDirectoryWrites(t *testing.T) {
	requireNTFSTools(t)
	testutil.RequireTool(t, "ntfsresize", "ntfs-3g")
	testutil.RequireTool(t, "ntfsinfo", "ntfs-3g")
	testutil.RequireTool(t, "setfattr", "attr")
	img, n := fragmentedDirImage(t)
	info := testutil.Run(t, "ntfsinfo", "-F", "/Windows/WinSxS", img)
	t.Logf("WinSxS with %d names: %s", n, attrsIn(info))
	const dir = "Windows/WinSxS"
	files := []string{dir + "/" + winsxsName(3), dir + "/" + winsxsName(n/2), "Windows/Temp/setup.log"}
	ops := windowsWorkload(dir, "Windows/Temp", files)
	for i := 10; i < n; i += 7 { // every seventh name goes
		ops = append(ops, wop{kind: "unlink", p: dir + "/" + winsxsName(i)})
	}
	for i := 0; i < 300; i++ {
		ops = append(ops, wop{kind: "create", p: fmt.Sprintf("%s/x86_new-component-%04d_31bf3856ad364e35_10.0.17763.1_none", dir, i)})
	}
	got := writeBothWays(t, img, ops)
	after := testutil.Run(t, "ntfsinfo", "-F", "/Windows/WinSxS", img)
	if !allocationSpills(after) {
		t.Errorf("ntfsinfo shows no $ATTRIBUTE_LIST with $INDEX_ALLOCATION in extension records for WinSxS after the writes")
	}
	t.Logf("after: %s", attrsIn(after))
	checkTools(t, img, got)
	checkIcat(t, img, got)
	removeAllWith3g(t, img)
}

// allocationSpills says whether ntfsinfo -F shows $INDEX_ALLOCATION
// extents outside the base record (that of $STANDARD_INFORMATION).
func allocationSpills(dump string) bool {
	base := ""
	for _, a := range attrsIn(dump) {
		typ, rec, _ := strings.Cut(a, "@")
		switch {
		case typ == "$STANDARD_INFORMATION":
			base = rec
		case typ == "$INDEX_ALLOCATION" && rec != base:
			return strings.Contains(dump, "$ATTRIBUTE_LIST")
		}
	}
	return false
}
