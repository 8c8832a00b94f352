package qcow2

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestConverted makes raw disks, converts them with qemu-img into every
// variant, reads them back byte for byte, writes a pattern of scattered
// writes, and has qemu-img check the refcounts and compare the content.
func TestConverted(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	cases := []struct {
		name    string
		opts    string
		extra   []string
		variant string
		cs      int64
		big     int  // length of the long write: enough to grow the refcount table at 512 B
		tiny    bool // shrink the table caches, so that evictions happen
	}{
		{"v2-64k", "compat=0.10,cluster_size=65536", nil, "v2", 65536, 1 << 20, false},
		{"v3-64k", "compat=1.1,cluster_size=65536", nil, "v3", 65536, 1 << 20, false},
		{"v2-4k", "compat=0.10,cluster_size=4096", nil, "v2", 4096, 1 << 20, false},
		{"v3-512", "compat=1.1,cluster_size=512", nil, "v3", 512, 12 << 20, false},
		{"v2-512", "compat=0.10,cluster_size=512", nil, "v2", 512, 6 << 20, false},
		{"v3-512-tiny-cache", "compat=1.1,cluster_size=512", []string{"-c"}, "v3", 512, 6 << 20, true},
		{"v3-2m", "compat=1.1,cluster_size=2097152", nil, "v3", 2 << 20, 5 << 20, false},
		{"v3-refbits1", "compat=1.1,cluster_size=4096,refcount_bits=1", nil, "v3", 4096, 1 << 20, false},
		{"v3-refbits8-512", "compat=1.1,cluster_size=512,refcount_bits=8", nil, "v3", 512, 4 << 20, false},
		{"v3-refbits64", "compat=1.1,cluster_size=4096,refcount_bits=64", nil, "v3", 4096, 1 << 20, false},
		{"v3-lazy", "compat=1.1,cluster_size=65536,lazy_refcounts=on", nil, "v3", 65536, 1 << 20, false},
		{"v2-deflate", "compat=0.10,cluster_size=65536", []string{"-c"}, "v2", 65536, 1 << 20, false},
		{"v3-deflate-4k", "compat=1.1,cluster_size=4096", []string{"-c"}, "v3", 4096, 1 << 20, false},
		{"v3-zstd", "compat=1.1,cluster_size=65536,compression_type=zstd", []string{"-c"}, "v3", 65536, 1 << 20, false},
		{"v3-zstd-512", "compat=1.1,cluster_size=512,compression_type=zstd", []string{"-c"}, "v3", 512, 1 << 20, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const size = 32 << 20
			src := makeRaw(t, dir, size, int64(i))
			img := filepath.Join(dir, "disk.qcow2")
			args := append([]string{"convert", "-O", "qcow2", "-o", c.opts}, c.extra...)
			testutil.Run(t, "qemu-img", append(args, src, img)...)

			d := openImage(t, img, true)
			if info := d.Info(); info.Format != "qcow2" || info.Variant != c.variant || info.ReadOnly != "" || info.Parent != "" {
				t.Fatalf("Info = %+v", info)
			}
			if c.tiny {
				d.l2.max = 4
				if err := d.prepareWrite(); err != nil {
					t.Fatal(err)
				}
				d.rc.maxCache = 4
			}
			compareAll(t, d, src)
			if len(c.extra) > 0 {
				requireCompressed(t, d, 0) // the pattern writes over it
			}
			applyWrites(t, d, src, pattern(size, c.cs, c.big, int64(i)), int64(i))
			compareAll(t, d, src)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			testutil.QemuCheck(t, "qcow2", img)
			testutil.QemuCompare(t, "qcow2", img, src)

			// A second session over what we wrote: in place this time.
			d = openImage(t, img, true)
			applyWrites(t, d, src, pattern(size, c.cs, c.big/4, int64(i)+100), int64(i)+100)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			testutil.QemuCheck(t, "qcow2", img)
			testutil.QemuCompare(t, "qcow2", img, src)
		})
	}
}

// TestReadOnlyOpen: without Writable, WriteAt is refused and the file is
// not touched.
func TestReadOnlyOpen(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	img := filepath.Join(dir, "d.qcow2")
	testutil.Run(t, "qemu-img", "create", "-f", "qcow2", img, "8M")
	before := testutil.Run(t, "sha256sum", img)
	d := openImage(t, img, false)
	if d.Info().ReadOnly == "" {
		t.Fatal("read-only open reports writable")
	}
	if _, err := d.WriteAt(make([]byte, 512), 0); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("WriteAt on read-only disk: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if after := testutil.Run(t, "sha256sum", img); after != before {
		t.Fatal("read-only open changed the file")
	}
}

// requireCompressed asserts that guest cluster gc is stored compressed, so
// that a test writing there covers the rewrite of compressed clusters.
func requireCompressed(t *testing.T, d *Disk, gc int64) {
	t.Helper()
	e, err := d.entry(gc)
	if err != nil || e&flagCompressed == 0 {
		t.Fatalf("guest cluster %d is not compressed (entry %#x, %v)", gc, e, err)
	}
}
