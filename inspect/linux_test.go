package inspect

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/ext"
	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/partition"
)

type fileDev struct {
	*os.File
	size int64
}

func (d fileDev) Size() int64 { return d.size }

// TestRPMUnknown: an rpm-based root (made by mkfs.ext4 -d) reports its
// applications as unknown, with the reason, never as an empty list.
func TestRPMUnknown(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "var", "lib", "rpm"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("NAME=\"Rocky Linux\"\nVERSION_ID=\"9.3\"\nID=rocky\n"), 0o644)
	img := filepath.Join(t.TempDir(), "fs")
	f, _ := os.Create(img)
	f.Truncate(8 << 20)
	f.Close()
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, img)
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fsys, err := ext.Open(fileDev{fh, 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var inf mount.Info
	inf.Applications = []any{}
	if !describeLinux(&inf, &mount.Volume{Partition: partition.Partition{Number: 2}, FS: fsys}) {
		t.Fatal("not recognised as Linux")
	}
	o := inf.OS.(*OS)
	if *o.ProductName != "Rocky Linux" || *o.Version != "9.3" || o.SystemPartition != "p2" {
		t.Errorf("os %+v", o)
	}
	if inf.Applications != nil || len(inf.Problems) != 1 {
		t.Errorf("applications %v, problems %v; want null and the reason", inf.Applications, inf.Problems)
	}
}
