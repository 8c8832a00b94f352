package vhdx

import (
	"archive/zip"
	"io"
	"os"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// unzipOne extracts name from a zip archive into dir.
func unzipOne(t *testing.T, archive, name, dir string) string {
	t.Helper()
	zr, err := zip.OpenReader(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if zf.Name != name {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		out := join(dir, name)
		w, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, rc); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("%s not in %s", name, archive)
	return ""
}

// TestCorpusWindows reads the dynamic VHDX written by Windows Server 2022
// and compares it with qemu's raw conversion, then writes to a copy and
// has qemu check and compare it.
func TestCorpusWindows(t *testing.T) {
	archive := testutil.Corpus(t, "velociraptor/test.vhdx.zip")
	dir := t.TempDir()
	img := unzipOne(t, archive, "test.vhdx", dir)
	rawPath := join(dir, "test.raw")
	qemuImg(t, "convert", "-f", "vhdx", "-O", "raw", img, rawPath)

	d := openPath(t, img, false, vdisk.Options{})
	if in := d.Info(); in.Variant != "dynamic" || d.Size() != 5*mib || d.BlockSize() != 32*mib {
		t.Fatalf("Info %+v size %d block %d, want dynamic, 5 MiB, 32 MiB blocks", in, d.Size(), d.BlockSize())
	}
	got := readAll(t, d)
	d.Close()
	sameBytes(t, "Windows image against qemu-img convert", got, fileBytes(t, rawPath))
	if string(got[512:520]) != "EFI PART" || string(got[65536+3:65536+11]) != "NTFS    " {
		t.Fatalf("no GPT header at 512 or NTFS boot sector at 65536")
	}

	// Write to a copy: the image's one block is allocated; the writes land
	// in place, and qemu must agree.
	copyPath := join(dir, "copy.vhdx")
	testutil.CopyFile(t, img, copyPath)
	d = openPath(t, copyPath, true, vdisk.Options{})
	applyWrites(t, d, rawPath, writePattern(d.Size(), mib, 7))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.QemuCheck(t, "vhdx", copyPath)
	testutil.QemuCompare(t, "vhdx", copyPath, rawPath)
}
