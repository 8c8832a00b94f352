package vhd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestReadQemuImages reads images qemu-img made from a raw disk and
// compares every byte with the raw disk.
func TestReadQemuImages(t *testing.T) {
	requireQemu(t)
	for _, tc := range []struct {
		subformat, variant string
		size               int64
	}{
		{"dynamic", "dynamic", 64 * MiB},
		{"fixed", "fixed", 64 * MiB},
		{"dynamic", "dynamic", 37*MiB + 512*3}, // last block partial
	} {
		t.Run(tc.subformat, func(t *testing.T) {
			dir := t.TempDir()
			rawPath := filepath.Join(dir, "disk.raw")
			vhdPath := filepath.Join(dir, "disk.vhd")
			makeRaw(t, rawPath, tc.size, 1)
			qemuConvert(t, rawPath, vhdPath, tc.subformat)
			if got := qemuVirtualSize(t, vhdPath); got != tc.size {
				t.Fatalf("qemu made a disk of %d bytes, want %d", got, tc.size)
			}
			d := openPath(t, vhdPath, false)
			if info := d.Info(); info.Format != "vhd" || info.Variant != tc.variant || info.ReadOnly == "" {
				t.Fatalf("Info = %+v", info)
			}
			assertSame(t, d, rawPath)
		})
	}
}

// TestOldFooter: Virtual PC before 2004 wrote a 511-byte footer. A fixed
// image qemu made, with the footer's last (reserved, zero) byte cut,
// still reads as the raw disk, and writes land in place.
func TestOldFooter(t *testing.T) {
	requireQemu(t)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	vhdPath := filepath.Join(dir, "disk.vhd")
	makeRaw(t, rawPath, 8*MiB, 13)
	qemuConvert(t, rawPath, vhdPath, "fixed")
	if err := os.Truncate(vhdPath, 8*MiB+511); err != nil {
		t.Fatal(err)
	}
	d := openPath(t, vhdPath, true)
	if v := d.Info().Variant; v != "fixed" {
		t.Fatalf("variant %q", v)
	}
	applyPattern(t, d, rawPath, []write{{off: 0, n: 512}, {off: 8*MiB - 100, n: 100}}, 14)
	assertSame(t, d, rawPath)
	d.Close()
	if got := fileSize(t, vhdPath); got != 8*MiB+511 {
		t.Fatalf("file size %d", got)
	}
	// A fixed image's data region is the disk itself.
	testutil.Run(t, "cmp", "-n", "8388608", vhdPath, rawPath)
}

// TestQemuCHSSize: without force_size qemu rounds the size to a CHS
// geometry and records the rounded size in the footer; the disk is what
// qemu itself reads back from the image.
func TestQemuCHSSize(t *testing.T) {
	requireQemu(t)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	vhdPath := filepath.Join(dir, "disk.vhd")
	makeRaw(t, rawPath, 20*MiB+4096, 16)
	testutil.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", rawPath, vhdPath)
	back := filepath.Join(dir, "back.raw")
	testutil.Run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", vhdPath, back)
	d := openPath(t, vhdPath, false)
	if d.Size() != qemuVirtualSize(t, vhdPath) || d.Size() == 20*MiB+4096 {
		t.Fatalf("size %d; qemu says %d", d.Size(), qemuVirtualSize(t, vhdPath))
	}
	assertSame(t, d, back)
}
