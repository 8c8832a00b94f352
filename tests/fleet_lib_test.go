package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fleetBundle is a Linux bundle every fleet image takes: one file into
// partition 1.
const fleetBundleID = "motd-fleet-1"

func makeFleetBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "patch.toml"), []byte(`id = "`+fleetBundleID+`"
title = "Message of the day for the fleet"

[applies]
os = "linux"
product = "Debian*"
`), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "files", "p1", "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "files", "p1", "etc", "motd"), []byte("patched by shards\n"), 0o644))
	return dir
}

// makeFleet makes a library of n Linux images (copies of one MBR disk
// with an ext4 made by mkfs.ext4 -d), spread over three folders; every
// seventh is a qcow2 made by qemu-img. It returns the library and the
// paths of its images.
func makeFleet(t *testing.T, n int) (string, []string) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/hostname":        "fleet\n",
		"etc/os-release":      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\n",
	}
	for p, c := range files {
		must(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	ext := makeExt4(t, root, 16, "root")
	base := filepath.Join(t.TempDir(), "base.img")
	makeDisk(t, base, "dos", []part{{sizeMiB: 16, typ: "83", fs: ext}})
	var qcow string
	lib := t.TempDir()
	var imgs []string
	for i := 0; i < n; i++ {
		dir := filepath.Join(lib, []string{"site-a", "site-b", "site-c/rack1"}[i%3])
		must(t, os.MkdirAll(dir, 0o755))
		if i%7 == 3 {
			if qcow == "" {
				qcow = filepath.Join(t.TempDir(), "base.qcow2")
				run(t, "qemu-img", "convert", "-O", "qcow2", base, qcow)
			}
			p := filepath.Join(dir, fmt.Sprintf("vm-%04d.qcow2", i))
			run(t, "cp", qcow, p)
			imgs = append(imgs, p)
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf("vm-%04d.img", i))
		run(t, "cp", "--sparse=always", base, p)
		imgs = append(imgs, p)
	}
	return lib, imgs
}

// fleetRecord reads the patch record offvm left in an image's ext4 with
// debugfs (after qemu-img made a raw copy of a qcow2), and checks that
// file system with e2fsck -fn.
func fleetRecord(t *testing.T, img string) string {
	t.Helper()
	raw := img
	if filepath.Ext(img) == ".qcow2" {
		raw = filepath.Join(t.TempDir(), "raw.img")
		run(t, "qemu-img", "convert", "-O", "raw", img, raw)
	}
	vol := extractPartTB(t, raw, partOffsets(t, raw)[0], 16)
	run(t, "e2fsck", "-fn", vol)
	out, err := exec.Command("debugfs", "-R", "cat /var/lib/offvm/patches/"+fleetBundleID, vol).Output()
	if err != nil {
		t.Fatalf("debugfs %s: %v", img, err)
	}
	return string(out)
}

// extractPartTB copies sizeMiB of img from off into a file of its own.
func extractPartTB(t *testing.T, img string, off int64, sizeMiB int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "part.img")
	run(t, "dd", "if="+img, "of="+out, "bs=1M", fmt.Sprintf("skip=%d", off), "iflag=skip_bytes", fmt.Sprintf("count=%d", sizeMiB), "status=none")
	return out
}
