package qcow2

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestCorpus reads real images made elsewhere, compares them whole with
// qemu-img's conversion, then writes a pattern into a copy and has qemu-img
// check and compare it.
func TestCorpus(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	cases := []struct {
		rel, variant string
	}{
		{"plaso/vsstest.qcow2", "v2"},
		{"dfvfs/windows_volume.qcow2", "v3"},
		{"dfvfs/ext2.qcow2", "v3"},
		{"plaso/image.qcow2", "v2"},
	}
	for i, c := range cases {
		t.Run(filepath.Base(c.rel), func(t *testing.T) {
			t.Parallel()
			src := testutil.Corpus(t, c.rel)
			dir := t.TempDir()
			img := filepath.Join(dir, "img.qcow2")
			testutil.CopyFile(t, src, img)
			want := filepath.Join(dir, "want.raw")
			toRaw(t, img, want)

			d := openImage(t, img, true)
			if info := d.Info(); info.Variant != c.variant || info.ReadOnly != "" {
				t.Fatalf("Info = %+v", info)
			}
			if raceEnabled && d.Size() > 256<<20 {
				compareEvery(t, d, want, 7) // a sample: one piece in seven
			} else {
				compareAll(t, d, want)
			}
			if c.rel == "plaso/vsstest.qcow2" {
				requireCompressed(t, d, 0)
			}
			cs := d.cs
			applyWrites(t, d, want, pattern(d.Size(), cs, int(min(d.Size()/4, 1<<20)), int64(i)), int64(i))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			testutil.QemuCheck(t, "qcow2", img)
			testutil.QemuCompare(t, "qcow2", img, want)
		})
	}
}

// TestCorpusBrokenChain: cirros-snapshot2 → cirros-snapshot1 → cirros.raw,
// which is absent: Open fails naming the missing file.
func TestCorpusBrokenChain(t *testing.T) {
	for _, rel := range []string{"cdi/cirros-snapshot2.qcow2", "cdi/cirros-snapshot1.qcow2"} {
		path := testutil.Corpus(t, rel)
		f, err := vdisk.OpenOSFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(f, vdisk.Options{OpenParent: openChain})
		f.Close()
		if !errors.Is(err, vdisk.ErrParentNotFound) || !strings.Contains(err.Error(), "cirros.raw") {
			t.Fatalf("Open %s = %v, want ErrParentNotFound naming cirros.raw", rel, err)
		}
		t.Logf("%s: %v", rel, err)
	}
}
