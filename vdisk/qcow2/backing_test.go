package qcow2

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// qemuIO runs qemu-io commands against a qcow2 image.
func qemuIO(t *testing.T, img string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	testutil.Run(t, "qemu-io", append(args, img)...)
}

// TestBackingRaw: a qcow2 child of a raw base, written partly by qemu-io,
// larger than its base; reads equal qemu-img's, writes (partial clusters
// over the base's data) keep the base's data for the rest of the cluster.
func TestBackingRaw(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	for i, compat := range []string{"0.10", "1.1"} {
		t.Run("compat="+compat, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			base := makeRaw(t, dir, 24<<20, int64(10+i))
			child := filepath.Join(dir, "child.qcow2")
			testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-o", "compat="+compat+",cluster_size=65536",
				"-b", "disk.raw", "-F", "raw", child, "32M")
			qemuIO(t, child, "write -P 0x55 1M 100k", "write -P 0x66 30M 70k", "write -z 5M 128k")
			want := filepath.Join(dir, "want.raw")
			toRaw(t, child, want)

			d := openImage(t, child, true)
			if info := d.Info(); info.Parent != base {
				t.Fatalf("Info().Parent = %q, want %q", info.Parent, base)
			}
			compareAll(t, d, want)
			applyWrites(t, d, want, pattern(32<<20, 65536, 1<<20, int64(i)), int64(i))
			compareAll(t, d, want)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			testutil.QemuCheck(t, "qcow2", child)
			testutil.QemuCompare(t, "qcow2", child, want)
		})
	}
}

// TestBackingChain: qcow2 on qcow2 on qcow2, each layer written by qemu-io.
func TestBackingChain(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	dir := t.TempDir()
	src := makeRaw(t, dir, 32<<20, 20)
	base := filepath.Join(dir, "base.qcow2")
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	testutil.Run(t, "qemu-img", "convert", "-O", "qcow2", "-c", "-o", "cluster_size=4096", src, base)
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=16384", "-b", "base.qcow2", "-F", "qcow2", mid)
	qemuIO(t, mid, "write -P 0x11 0 70k", "write -P 0x12 10M 1M")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", "-b", mid, "-F", "qcow2", top)
	qemuIO(t, top, "write -P 0x21 64k 64k", "write -P 0x22 10485000 1000")
	want := filepath.Join(dir, "want.raw")
	toRaw(t, top, want)

	d := openImage(t, top, true)
	if d.Info().Parent != mid {
		t.Fatalf("Parent = %q", d.Info().Parent)
	}
	compareAll(t, d, want)
	applyWrites(t, d, want, pattern(32<<20, 65536, 1<<20, 7), 7)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCheck(t, "qcow2", top)
	testutil.QemuCheck(t, "qcow2", mid)
	testutil.QemuCompare(t, "qcow2", top, want)
}

// TestBackingMissing: a child whose backing file is absent, or opened
// without a way to reach parents, fails with ErrParentNotFound naming it.
func TestBackingMissing(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	child := filepath.Join(dir, "child.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-u", "-b", "gone.raw", "-F", "raw", child, "8M")
	for _, tc := range []struct {
		name   string
		parent func(string) (vdisk.Disk, error)
	}{{"chain", openChain}, {"nil", nil}} {
		f, err := vdisk.OpenOSFile(child, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(f, vdisk.Options{OpenParent: tc.parent})
		f.Close()
		if !errors.Is(err, vdisk.ErrParentNotFound) || !strings.Contains(err.Error(), "gone.raw") || !strings.Contains(err.Error(), child) {
			t.Fatalf("%s: Open = %v, want ErrParentNotFound naming gone.raw and the child", tc.name, err)
		}
	}
}

// TestBackingFormatMismatch: a backing file declared raw that reads as
// qcow2 is refused rather than followed.
func TestBackingFormatMismatch(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	child := filepath.Join(dir, "child.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", base, "8M")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", "-b", "base.img", "-F", "raw", child, "8M")
	f, err := vdisk.OpenOSFile(child, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Open(f, vdisk.Options{OpenParent: openChain}); !errors.Is(err, vdisk.ErrUnsupported) {
		t.Fatalf("Open = %v, want ErrUnsupported for the format mismatch", err)
	}
}
