package qcow2

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestRefused: features this package does not implement are refused at
// Open with ErrUnsupported and a message naming them.
func TestRefused(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	cases := []struct {
		name, word string
		args       []string
	}{
		// LUKS is refused the same way (crypt_method 2), but making one
		// costs qemu-img seconds of key derivation.
		{"aes", "encrypt", []string{"--object", "secret,id=sec0,data=123456", "-o", "encrypt.format=aes,encrypt.key-secret=sec0,compat=0.10"}},
		{"data-file", "external data file", []string{"-o", "data_file=ext.data"}},
		{"extended-l2", "extended L2", []string{"-o", "extended_l2=on"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "d.qcow2")
			args := append([]string{"create", "-f", "qcow2"}, c.args...)
			cmd := exec.Command("qemu-img", append(args, img, "4M")...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Skipf("qemu-img cannot make this image: %v\n%s", err, out)
			}
			f, err := vdisk.OpenOSFile(img, false)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = Open(f, vdisk.Options{Writable: true})
			if !errors.Is(err, vdisk.ErrUnsupported) || !strings.Contains(err.Error(), c.word) {
				t.Fatalf("Open = %v, want ErrUnsupported mentioning %q", err, c.word)
			}
		})
	}
}

// TestReadOnlyReasons: images that are readable but not safely writable
// open with Info().ReadOnly saying why, and read the active state.
func TestReadOnlyReasons(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	cases := []struct {
		name, word string
		make       func(t *testing.T, img string, hole int64)
	}{
		{"bitmap", "bitmap", func(t *testing.T, img string, hole int64) {
			testutil.Run(t, "qemu-img", "bitmap", "--add", img, "b0")
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := makeRaw(t, dir, 16<<20, int64(30+i))
			img := filepath.Join(dir, "d.qcow2")
			testutil.Run(t, "qemu-img", "convert", "-O", "qcow2", "-o", "lazy_refcounts=on", src, img)
			c.make(t, img, zeroCluster(t, src))
			want := filepath.Join(dir, "want.raw")
			toRaw(t, img, want)
			d := openImage(t, img, true)
			defer d.Close()
			if ro := d.Info().ReadOnly; !strings.Contains(ro, c.word) {
				t.Fatalf("ReadOnly = %q, want a reason mentioning %q", ro, c.word)
			}
			if _, err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, vdisk.ErrReadOnly) {
				t.Fatalf("WriteAt = %v, want ErrReadOnly", err)
			}
			compareAll(t, d, want)
		})
	}
}

// isDirty reads the dirty bit (v3 incompatible feature bit 0) from the
// header qemu left.
func isDirty(t *testing.T, img string) bool {
	out := testutil.Run(t, "qemu-img", "info", "-U", "--output=json", img)
	return strings.Contains(out, `"dirty-flag": true`)
}

// zeroCluster finds a 64 KiB-aligned run of zeros in a raw file: a write
// there makes qemu allocate.
func zeroCluster(t *testing.T, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+65536 <= len(b); off += 65536 {
		if vdisk.IsZero(b[off : off+65536]) {
			return int64(off)
		}
	}
	t.Fatal("no zero cluster in the test disk")
	return 0
}

// TestDirtyRepair: an image qemu left dirty (lazy refcounts, qemu-io killed
// after allocating) reads as qemu reads it; the first write rebuilds the
// refcounts, and qemu-img check then finds the image clean, dirty bit gone.
func TestDirtyRepair(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	for i, opts := range []string{"cluster_size=65536", "cluster_size=512,refcount_bits=4", "cluster_size=4096"} {
		t.Run(opts, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := makeRaw(t, dir, 16<<20, int64(50+i))
			img := filepath.Join(dir, "d.qcow2")
			args := []string{"convert", "-O", "qcow2", "-o", "lazy_refcounts=on," + opts}
			if i == 2 {
				args = append(args, "-c")
			}
			testutil.Run(t, "qemu-img", append(args, src, img)...)
			w := fmt.Sprintf("write -P 0x99 %d 64k", zeroCluster(t, src))
			exec.Command("qemu-io", "-f", "qcow2", "-c", w, "-c", "write -P 0x98 0 1k", "-c", "sigraise 9", img).Run()
			if !isDirty(t, img) {
				t.Skip("qemu-io did not leave the image dirty")
			}
			want := filepath.Join(dir, "want.raw")
			toRaw(t, img, want)
			d := openImage(t, img, true)
			if ro := d.Info().ReadOnly; ro != "" {
				t.Fatalf("dirty image opened read-only: %s", ro)
			}
			compareAll(t, d, want)
			applyWrites(t, d, want, pattern(16<<20, d.cs, 1<<20, int64(i)), int64(i))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if isDirty(t, img) {
				t.Fatal("dirty bit still set after our write")
			}
			testutil.QemuCheck(t, "qcow2", img)
			testutil.QemuCompare(t, "qcow2", img, want)
		})
	}
}

// TestSnapshotsWrite: on an image with internal snapshots, writes to the
// active state copy shared L2 tables and clusters; qemu-img check finds the
// refcounts exact and every snapshot reads as before.
func TestSnapshotsWrite(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "qemu-io", "qemu-utils")
	for i, opts := range []string{"compat=1.1,cluster_size=65536", "compat=0.10,cluster_size=4096"} {
		t.Run(opts, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := makeRaw(t, dir, 16<<20, int64(60+i))
			img := filepath.Join(dir, "d.qcow2")
			testutil.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", opts, src, img)
			testutil.Run(t, "qemu-img", "snapshot", "-c", "snap1", img)
			qemuIO(t, img, "write -P 0x77 1M 200k", "write -P 0x78 0 4k")
			testutil.Run(t, "qemu-img", "snapshot", "-c", "snap2", img)
			qemuIO(t, img, "write -P 0x79 3M 100k")
			snaps := map[string]string{}
			for _, s := range []string{"snap1", "snap2"} {
				snaps[s] = filepath.Join(dir, s+".raw")
				testutil.Run(t, "qemu-img", "convert", "-l", "snapshot.name="+s, "-O", "raw", img, snaps[s])
			}
			want := filepath.Join(dir, "want.raw")
			toRaw(t, img, want)

			d := openImage(t, img, true)
			if ro := d.Info().ReadOnly; ro != "" {
				t.Fatalf("ReadOnly = %q", ro)
			}
			compareAll(t, d, want)
			applyWrites(t, d, want, pattern(16<<20, d.cs, 1<<20, int64(i)), int64(i))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			testutil.QemuCheck(t, "qcow2", img)
			testutil.QemuCompare(t, "qcow2", img, want)
			for s, path := range snaps {
				after := filepath.Join(dir, s+".after.raw")
				testutil.Run(t, "qemu-img", "convert", "-l", "snapshot.name="+s, "-O", "raw", img, after)
				testutil.Run(t, "cmp", path, after)
			}
		})
	}
}
