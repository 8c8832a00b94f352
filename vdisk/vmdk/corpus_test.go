package vmdk

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestCorpus reads real files made by other tools in full and compares
// them with qemu-img's raw conversion; then writes into a copy.
func TestCorpus(t *testing.T) {
	for _, name := range []string{"dfvfs/ext2.vmdk", "plaso/image.vmdk"} {
		t.Run(name, func(t *testing.T) {
			src := testutil.Corpus(t, name)
			dir := t.TempDir()
			want := filepath.Join(dir, "want.raw")
			qemuImg(t, "convert", "-f", "vmdk", "-O", "raw", src, want)
			d := openDisk(t, src, false)
			if info := d.Info(); info.Variant != "monolithicSparse" {
				t.Errorf("Info() = %+v", info)
			}
			compareDisk(t, d, want)
			d.Close()

			img := filepath.Join(dir, "copy.vmdk")
			testutil.CopyFile(t, src, img)
			testutil.Run(t, "chmod", "u+w", img)
			d = openDisk(t, img, true)
			size := d.Size()
			applyPattern(t, d, want, []write{{off: 0, n: 512}, {off: size - 700, n: 700}, {off: size / 2, n: 9000}}, 11)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			qemuCheck(t, img)
			testutil.QemuCompare(t, "vmdk", img, want)
		})
	}
}

func TestTruncatedStream(t *testing.T) {
	src := testutil.Corpus(t, "govmomi/truncated-streamOptimized.vmdk")
	f, err := vdisk.OpenOSFile(src, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !Match(f) {
		t.Fatal("Match refused a VMDK")
	}
	_, err = Open(f, vdisk.Options{})
	if !errors.Is(err, vdisk.ErrCorrupt) || !strings.Contains(err.Error(), "footer") || !strings.Contains(err.Error(), src) {
		t.Fatalf("Open: %v, want a corrupt-footer error naming the file", err)
	}
	t.Log(err)
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"sparse", "KDMV\x01\x00\x00\x00", true},
		{"descriptor", "# Disk DescriptorFile\nversion=1\n", true},
		{"hint only", "version=1\ncreateType = \"monolithicFlat\"\n", true},
		{"raw zeros", strings.Repeat("\x00", 4096), false},
		{"qcow2", "QFI\xfb\x00\x00\x00\x03", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		if got := Match(vdisk.NewMemFile(tt.name, []byte(tt.data))); got != tt.want {
			t.Errorf("Match(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
