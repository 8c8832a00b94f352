package vmdk

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// makeChain makes parent.vmdk from a raw disk and child.vmdk on it with
// qemu-img, and lets qemu-io write some grains into the child.
func makeChain(t *testing.T, dir string, createOpts ...string) (child, parent string) {
	t.Helper()
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	rawPath := filepath.Join(dir, "parent.raw")
	makeRaw(t, rawPath, diskSize, 7)
	parent = filepath.Join(dir, "parent.vmdk")
	child = filepath.Join(dir, "child.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", rawPath, parent)
	qemuImg(t, append(append([]string{"create", "-f", "vmdk"}, createOpts...), "-b", "parent.vmdk", "-F", "vmdk", child)...)
	testutil.Run(t, "qemu-io", "-f", "vmdk", "-c", "write -P 0x5a 1M 100k", "-c", "write -P 0xa5 40M 64k", "-c", "write -z 128k 64k", child)
	return child, parent
}

// TestChild reads a child through its parent, then writes into grains the
// child has, grains only the parent has (partially, so the parent's bytes
// must fill the rest), and grains nobody has.
func TestChild(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []string
	}{
		{"monolithicSparse", nil},
		{"zeroedGrain", []string{"-o", "zeroed_grain=on"}},
		{"twoGbMaxExtentSparse", []string{"-o", "subformat=twoGbMaxExtentSparse"}},
	} {
		t.Run(tt.name, func(t *testing.T) { testChild(t, tt.opts) })
	}
}

func testChild(t *testing.T, createOpts []string) {
	dir := t.TempDir()
	child, parent := makeChain(t, dir, createOpts...)
	want := filepath.Join(dir, "want.raw")
	qemuImg(t, "convert", "-f", "vmdk", "-O", "raw", child, want)
	parentRaw := filepath.Join(dir, "parent-before.raw")
	qemuImg(t, "convert", "-f", "vmdk", "-O", "raw", parent, parentRaw)

	d := openDisk(t, child, false)
	if info := d.Info(); info.Parent != parent || info.Variant == "" {
		t.Errorf("Info() = %+v, want parent %s", info, parent)
	}
	compareDisk(t, d, want)
	d.Close()

	d = openDisk(t, child, true)
	ws := append(pattern(diskSize),
		write{off: 1*mib + 4096, n: 100},   // grain of the child
		write{off: 3*grain + 10, n: 20},    // grain of the parent only
		write{off: gtSpan + 512, n: grain}, // across grains the parent has or not
		write{off: 20 * grain, n: grain, zero: true})
	applyPattern(t, d, want, ws, 8)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	qemuCheck(t, child)
	testutil.QemuCompare(t, "vmdk", child, want)
	testutil.QemuCompare(t, "vmdk", parent, parentRaw) // parents are never written
}

func TestParentErrors(t *testing.T) {
	dir := t.TempDir()
	child, parent := makeChain(t, dir)

	open := func(opts vdisk.Options) error {
		f, err := vdisk.OpenOSFile(child, false)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, err := Open(f, opts)
		if err == nil {
			d.Close()
		}
		return err
	}
	if err := open(vdisk.Options{}); !errors.Is(err, vdisk.ErrParentNotFound) {
		t.Errorf("without OpenParent: %v, want ErrParentNotFound", err)
	}

	// A parent written since the child was made has a new CID.
	testutil.Run(t, "qemu-io", "-f", "vmdk", "-c", "write -P 1 0 4k", parent)
	err := open(vdisk.Options{OpenParent: openAny})
	if !errors.Is(err, vdisk.ErrCorrupt) || !strings.Contains(err.Error(), "content ID") {
		t.Errorf("parent with another CID: %v, want a content ID error", err)
	}

	if err := os.Remove(parent); err != nil {
		t.Fatal(err)
	}
	err = open(vdisk.Options{OpenParent: openAny})
	if !errors.Is(err, vdisk.ErrParentNotFound) || !strings.Contains(err.Error(), "parent.vmdk") || !strings.Contains(err.Error(), child) {
		t.Errorf("missing parent: %v, want ErrParentNotFound naming child and parent", err)
	}
}

// TestEmptyDirectoryEntry clears the grain directory entries of an unused
// grain table (as VMware images and streams have them) and writes there:
// new grain tables must be allocated in both directories.
func TestEmptyDirectoryEntry(t *testing.T) {
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	f, _ := os.Create(rawPath)
	f.Truncate(diskSize)
	f.Close()
	applyPattern(t, nil, rawPath, []write{{off: 100, n: 1000}}, 9) // first table only
	img := filepath.Join(dir, "d.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", rawPath, img)

	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	rgd, gd := le.Uint64(b[48:]), le.Uint64(b[56:])
	for _, dirSec := range []uint64{gd, rgd} {
		entry := b[dirSec*512+4 : dirSec*512+8] // second table: 32-64 MiB
		if le.Uint32(entry) == 0 {
			t.Fatal("qemu-img left the directory entry empty: test premise broken")
		}
		clear(entry)
	}
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCompare(t, "vmdk", img, rawPath)

	d := openDisk(t, img, true)
	applyPattern(t, d, rawPath, []write{{off: gtSpan + 5000, n: 3 * grain}, {off: diskSize - 512, n: 512}}, 10)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	qemuCheck(t, img)
	testutil.QemuCompare(t, "vmdk", img, rawPath)
	checkRedundant(t, img, rawPath)
}
