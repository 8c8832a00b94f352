package tests

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

func unzipOne(t *testing.T, src, dir string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, filepath.Base(f.Name)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(out, rc)
		out.Close()
		rc.Close()
	}
}

// TestCorpusContainers mounts the real container images of the corpus:
// a VHDX written by Windows Server 2022, qcow2 images with an NTFS made by
// Windows (one with every cluster compressed), and the broken ones, which
// show only their info.json with an error naming the file and the cause.
func TestCorpusContainers(t *testing.T) {
	lib := t.TempDir()
	unzipOne(t, testutil.Corpus(t, "velociraptor/test.vhdx.zip"), lib)
	for _, f := range []string{"plaso/vsstest.qcow2", "dfvfs/windows_volume.qcow2", "dfvfs/fat-differential.vhd",
		"cdi/cirros-snapshot2.qcow2", "govmomi/truncated-streamOptimized.vmdk"} {
		testutil.CopyFile(t, testutil.Corpus(t, f), filepath.Join(lib, filepath.Base(f)))
	}
	mnt := mountLib(t, lib, "--ro")
	reads := map[string]string{
		"test.vhdx/p1/Hello.txt.txt":                             "",
		"test.vhdx/p1/Users/Administrator/Secret.txt.txt":        "",
		"vsstest.qcow2/p0/password.txt":                          "",
		"windows_volume.qcow2/p0/Windows/System32/config/syslog": "",
	}
	for p := range reads {
		if _, err := os.ReadFile(filepath.Join(mnt, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if lbl := infoOf(t, filepath.Join(mnt, "test.vhdx"))["partitions"].([]any)[0].(map[string]any)["label"]; lbl != "Test Volume" {
		t.Errorf("test.vhdx partition label %v", lbl)
	}
	for name, cause := range map[string]string{
		"fat-differential.vhd":           "fat-parent.vhd",
		"cirros-snapshot2.qcow2":         "cirros",
		"truncated-streamOptimized.vmdk": "truncated",
	} {
		dir := filepath.Join(mnt, name)
		if got := strings.Join(listNames(t, dir), ","); got != "info.json" {
			t.Errorf("%s lists %q, want only info.json", name, got)
		}
		e, _ := infoOf(t, dir)["error"].(string)
		if !strings.Contains(e, name) || !strings.Contains(e, cause) {
			t.Errorf("%s: error %q should name the file and %q", name, e, cause)
		}
	}
}

// TestSameTreeEveryFormat: one raw disk converted by qemu-img into every
// format reads identically through each.
func TestSameTreeEveryFormat(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	src := t.TempDir()
	makeTree(t, src, treeOptions{unicode: true, deep: 5})
	fat := makeFAT(t, src, 48, 32, "DATA")
	lib := t.TempDir()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 48, typ: "U", fs: fat}})
	formats := map[string][]string{
		"disk.qcow2": {"-O", "qcow2"}, "disk-c.qcow2": {"-c", "-O", "qcow2"},
		"disk.vhdx": {"-O", "vhdx"}, "disk.vhd": {"-O", "vpc", "-o", "subformat=dynamic,force_size=on"},
		"disk.vmdk": {"-O", "vmdk"}, "disk-stream.vmdk": {"-O", "vmdk", "-o", "subformat=streamOptimized"},
	}
	for name, args := range formats {
		run(t, "qemu-img", append(append([]string{"convert"}, args...), raw, filepath.Join(lib, name))...)
	}
	iso := filepath.Join(lib, "cd.iso")
	if testutilHas("genisoimage") {
		run(t, "genisoimage", "-quiet", "-R", "-J", "-o", iso, src)
	}
	mnt := mountLib(t, lib, "--ro")
	for name := range formats {
		t.Run(name, func(t *testing.T) { compareTrees(t, src, filepath.Join(mnt, name, "p1")) })
	}
	if testutilHas("genisoimage") {
		t.Run("iso9660", func(t *testing.T) { compareTrees(t, src, filepath.Join(mnt, "cd.iso", "p0")) })
	}
}
