package vhd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestDifferencingLocators: each kind of parent locator, alone, leads to
// the parent; the parent name in the header is not used while a locator
// resolves. libvhdi agrees the child is its parent's disk.
func TestDifferencingLocators(t *testing.T) {
	requireQemu(t)
	for _, tc := range []struct {
		name string
		locs func(dir string) []locatorSpec
	}{
		{"W2ru", func(string) []locatorSpec { return []locatorSpec{{"W2ru", `.\parent.vhd`}} }},
		{"W2ku moved", func(string) []locatorSpec { return []locatorSpec{{"W2ku", `D:\VMs\gone\parent.vhd`}} }},
		{"MacX", func(dir string) []locatorSpec { return []locatorSpec{{"MacX", filepath.Join(dir, "parent.vhd")}} }},
		{"parent name only", func(string) []locatorSpec { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rawPath := filepath.Join(dir, "disk.raw")
			parent := filepath.Join(dir, "parent.vhd")
			child := filepath.Join(dir, "child.vhd")
			makeRaw(t, rawPath, 4*MiB, 5)
			qemuConvert(t, rawPath, parent, "dynamic")
			makeDifferencing(t, parent, child, `E:\old\parent.vhd`, tc.locs(dir))
			d := openPath(t, child, false)
			if info := d.Info(); info.Variant != "differencing" || info.Parent != parent {
				t.Fatalf("Info = %+v", info)
			}
			assertSame(t, d, rawPath)
		})
	}
}

// TestDifferencing makes a parent with qemu-img and a child on it, reads
// the child (all parent data), writes a pattern into the child, and has
// libvhdi read the chain back against the raw disk with the same writes.
func TestDifferencing(t *testing.T) {
	requireQemu(t)
	requirePyvhdi(t)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	parent := filepath.Join(dir, "parent.vhd")
	child := filepath.Join(dir, "child.vhd")
	makeRaw(t, rawPath, 64*MiB, 5)
	qemuConvert(t, rawPath, parent, "dynamic")
	makeDifferencing(t, parent, child, "nowhere.vhd", []locatorSpec{
		{"W2ku", `C:\x\parent.vhd`}, {"W2ru", `.\parent.vhd`}, {"MacX", filepath.Join(dir, "parent.vhd")}})
	// The oracle agrees the child, untouched, is its parent.
	testutil.Run(t, "cmp", vhdiRead(t, child, parent), rawPath)
	parentBefore, _ := os.ReadFile(parent)

	d := openPath(t, child, true)
	applyPattern(t, d, rawPath, diffPattern, 6)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "cmp", vhdiRead(t, child, parent), rawPath)
	assertSame(t, openPath(t, child, false), rawPath)
	assertFooters(t, child)
	if now, _ := os.ReadFile(parent); !bytes.Equal(now, parentBefore) {
		t.Fatal("writing the child changed the parent")
	}
	// qemu reads a differencing VHD as if it had no parent: it still
	// finds the footer, BAT and blocks where they should be.
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", child, filepath.Join(dir, "q.raw"))
}

// TestDifferencingBitmapOnlyWritten: sectors not written in a child block
// keep coming from the parent, even after the parent changes, which shows
// the child holds bits only for the sectors written, and parent bytes
// merged into a partly written sector at write time.
func TestDifferencingBitmapOnlyWritten(t *testing.T) {
	requireQemu(t)
	requirePyvhdi(t)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	parent := filepath.Join(dir, "parent.vhd")
	child := filepath.Join(dir, "child.vhd")
	makeRaw(t, rawPath, 8*MiB, 8)
	qemuConvert(t, rawPath, parent, "dynamic")
	makeDifferencing(t, parent, child, "parent.vhd", nil)
	old, err := os.ReadFile(rawPath)
	if err != nil {
		t.Fatal(err)
	}

	// Sector 1 of a 4 KiB group, from byte 700 of the group on.
	at := int64(1*MiB + 3*4096)
	data := bytes.Repeat([]byte("child"), (4096-700)/5+1)[:4096-700]
	d := openPath(t, child, true)
	if _, err := d.WriteAt(data, at+700); err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Change the whole parent with qemu; its unique id stays.
	testutil.Run(t, "qemu-io", "-f", "vpc", "-c", "write -P 0x3c 0 8M", parent)
	want := bytes.Repeat([]byte{0x3c}, 8*MiB)
	copy(want[at+512:at+700], old[at+512:at+700]) // merged when written
	copy(want[at+700:], data)
	wantPath := filepath.Join(dir, "want.raw")
	if err := os.WriteFile(wantPath, want, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "cmp", vhdiRead(t, child, parent), wantPath)
	assertSame(t, openPath(t, child, false), wantPath)
}

// TestDifferencingParentErrors: a missing parent and a parent with another
// unique id are refused, naming the files.
func TestDifferencingParentErrors(t *testing.T) {
	requireQemu(t)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	parent := filepath.Join(dir, "parent.vhd")
	child := filepath.Join(dir, "child.vhd")
	makeRaw(t, rawPath, 4*MiB, 9)
	qemuConvert(t, rawPath, parent, "dynamic")
	makeDifferencing(t, parent, child, `C:\vms\parent.vhd`, []locatorSpec{{"W2ku", `C:\vms\parent.vhd`}})

	f, err := vdisk.OpenOSFile(child, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(f, vdisk.Options{})
	mustErr(t, err, vdisk.ErrParentNotFound, child, `C:\vms\parent.vhd`)

	setUniqueID(t, parent, [16]byte{1, 2, 3})
	_, err = openWith(child, false)
	mustErr(t, err, vdisk.ErrCorrupt, child, "unique id")

	os.Remove(parent)
	_, err = openWith(child, false)
	mustErr(t, err, vdisk.ErrParentNotFound, child, `C:\vms\parent.vhd`)
}
