package xfs

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// extraMeta is added to the -m options of the write tests' images:
// TestRmapbt runs them again on file systems with reverse maps.
var extraMeta string

// mkfs makes an XFS in img with mkfs.xfs's options args, extraMeta
// added to -m; with rmapbt asked for, xfs_db must say the volume has it.
func mkfs(t *testing.T, img string, args ...string) {
	t.Helper()
	args = append([]string(nil), args...)
	for i := 1; i < len(args); i++ {
		if args[i-1] == "-m" {
			args[i] += extraMeta
		}
	}
	testutil.Run(t, "mkfs.xfs", append(append([]string{"-q", "-f"}, args...), img)...)
	if strings.Contains(extraMeta, "rmapbt=1") {
		out, err := exec.Command("xfs_db", "-r", "-c", "version", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "RMAPBT") {
			t.Fatalf("xfs_db version on the new volume: %v: %s (want RMAPBT)", err, out)
		}
	}
}

// TestRmapbt runs the write tests (kernel as oracle, xfs_repair -n,
// a device failure at every write) on file systems with rmapbt, whose
// every record xfs_repair checks against the blocks it finds owned.
func TestRmapbt(t *testing.T) {
	extraMeta = ",rmapbt=1"
	defer func() { extraMeta = "" }()
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Write", TestWriteAgainstKernel},
		{"WriteFailure", TestWriteFailure},
		{"Names", TestNamesAgainstKernel},
		{"Reflink", TestReflinkAgainstKernel},
		{"ReflinkFailure", TestReflinkFailure},
		{"InodeTrees", TestInodeTreesAgainstKernel},
		{"InodeTreesFailure", TestInodeTreesFailure},
		{"InodeChunks", TestInodeChunksAgainstKernel},
		{"Xattrs", TestXattrsAgainstKernel},
		{"Bmbt", TestBmbtAgainstKernel},
		{"BtreeDir", TestBtreeDirAgainstKernel},
		{"BtreeDirFailure", TestBtreeDirFailure},
		{"Depth", testRmapDepth},
		{"Concurrent", TestWriteConcurrent},
	} {
		t.Run(c.name, c.fn)
	}
}

// rmapShape is, over the AGs as xfs_db reads their AGFs, the deepest
// rmapbt and the blocks all of them hold.
func rmapShape(t *testing.T, img string) (levels, blocks int) {
	for ag := 0; ag < dbFields(t, img, "sb 0", "agcount")["agcount"]; ag++ {
		v := dbFields(t, img, fmt.Sprintf("agf %d", ag), "rmaplevel", "rmapblocks")
		levels, blocks = max(levels, v["rmaplevel"]), blocks+v["rmapblocks"]
	}
	return levels, blocks
}

// testRmapDepth: deep's 5,015 extents give its AG a reverse map of two
// levels; cut to ten blocks through offvm (and through the kernel on a
// copy), its records go and the tree is one leaf again, its blocks back
// in the AGFL and free space; xfs_repair -n is clean and the kernel's
// mounts agree.
func testRmapDepth(t *testing.T) {
	img := bmbtImage(t)
	ref := copyFile(t, img)
	lv, blocks := rmapShape(t, img)
	if lv < 2 {
		t.Fatalf("the kernel's reverse maps have %d levels, want 2", lv)
	}
	f, err := OpenWritable(testutil.OpenDevice(t, img, true))
	if err != nil {
		t.Fatal(err)
	}
	mnt := mountLoop(t, ref)
	for i, s := range []step{{path: "deep", size: 10 * 8192}, {path: "frag", size: 3 * 8192}} {
		s.both(t, f, mnt, i)
	}
	testutil.Run(t, "umount", mnt)
	repairClean(t, img)
	if lv2, blocks2 := rmapShape(t, img); lv2 != 1 || blocks2 >= blocks {
		t.Errorf("after the cut the reverse maps have %d levels in %d blocks (before: %d in %d), want 1 level in fewer", lv2, blocks2, lv, blocks)
	}
	testutil.CompareTrees(t, kernelView(t, ref), kernelView(t, img))
	testutil.CompareTrees(t, kernelView(t, img), testutil.EngineTree(t, openImage(t, img), true))
}
