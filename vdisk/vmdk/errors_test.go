package vmdk

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/vdisk"
)

// TestOpenErrors: descriptors that cannot be served are refused with an
// error naming the file and the cause.
func TestOpenErrors(t *testing.T) {
	head := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
	tests := []struct {
		name, text string
		want       error
		mention    string
	}{
		{"missing extent", head + "RW 2048 FLAT \"gone-flat.vmdk\" 0\n", os.ErrNotExist, "gone-flat.vmdk"},
		{"VMFSSPARSE", head + "RW 2048 VMFSSPARSE \"x-delta.vmdk\"\n", vdisk.ErrUnsupported, "VMFSSPARSE"},
		{"no extents", head, vdisk.ErrCorrupt, "no extents"},
		{"bad size", head + "RW 12x FLAT \"x.vmdk\" 0\n", vdisk.ErrCorrupt, "bad size"},
		{"unterminated name", head + "RW 8 FLAT \"x.vmdk\n", vdisk.ErrCorrupt, "unterminated"},
		{"sparse extent that is not", head + "RW 8 SPARSE \"d.vmdk\"\n", vdisk.ErrCorrupt, "sparse header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.vmdk")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := vdisk.OpenOSFile(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !Match(f) {
				t.Fatal("Match refused the descriptor")
			}
			_, err = Open(f, vdisk.Options{})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.mention) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v; want %v mentioning %q and the file", err, tt.want, tt.mention)
			}
		})
	}
}

// TestRange: reads past the end end with io.EOF, writes past it fail.
func TestRange(t *testing.T) {
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	makeRaw(t, rawPath, 4*mib, 3)
	img := filepath.Join(dir, "d.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", rawPath, img)
	d := openDisk(t, img, true)
	defer d.Close()
	size := d.Size()
	buf := make([]byte, 4096)
	if n, err := d.ReadAt(buf, size-1000); n != 1000 || err != io.EOF {
		t.Errorf("read across the end: %d, %v; want 1000, EOF", n, err)
	}
	if n, err := d.ReadAt(buf, size); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v; want 0, EOF", n, err)
	}
	if _, err := d.WriteAt(buf, size-1000); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Errorf("write across the end: %v; want ErrOutOfRange", err)
	}
	if _, err := d.ReadAt(buf, -1); !errors.Is(err, vdisk.ErrOutOfRange) {
		t.Errorf("read at -1: %v; want ErrOutOfRange", err)
	}
}
