package xfs

import (
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
	} {
		t.Run(c.name, c.fn)
	}
}
