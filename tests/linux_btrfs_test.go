package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestLinuxBtrfsGuest: an openSUSE/Fedora-shaped disk with a btrfs root
// made by mkfs.btrfs --rootdir; inspect names the guest, and the tree
// read through FUSE is the source tree, file for file.
func TestLinuxBtrfsGuest(t *testing.T) {
	testutil.RequireTool(t, "mkfs.btrfs", "btrfs-progs")
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "etc", "os-release"), []byte("NAME=\"openSUSE Leap\"\nVERSION_ID=\"15.6\"\nID=\"opensuse-leap\"\nPRETTY_NAME=\"openSUSE Leap 15.6\"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "etc", "hostname"), []byte("suse01\n"), 0o644))
	writeFile(t, filepath.Join(src, "usr", "lib", "libbig.so"), 3<<20)
	for i := 0; i < 200; i++ {
		writeFile(t, filepath.Join(src, "usr", "share", "doc", "f"+strconvItoa(int64(i))), i*37)
	}
	must(t, os.Symlink("../lib/libbig.so", filepath.Join(src, "usr", "share", "link")))
	fs := filepath.Join(t.TempDir(), "btrfs.img")
	sparseFile(t, fs, 200*mib)
	run(t, "mkfs.btrfs", "-q", "-f", "-L", "suse-root", "--rootdir", src, fs)
	lib := t.TempDir()
	img := filepath.Join(lib, "suse01.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 4, typ: "U"}, {sizeMiB: 200, typ: "L", fs: fs}})

	var inf struct {
		OS struct {
			ProductName string `json:"product_name"`
			Hostname    string `json:"hostname"`
			System      string `json:"system_partition"`
		} `json:"os"`
	}
	out := mustOffvm(t, "inspect", "--json", img)
	must(t, json.Unmarshal([]byte(out), &inf))
	if inf.OS.ProductName != "openSUSE Leap 15.6" || inf.OS.Hostname != "suse01" || inf.OS.System != "p2" {
		t.Fatalf("inspect: %+v\n%s", inf.OS, out)
	}
	mnt := mountLib(t, lib)
	want := testutil.KernelTree(t, src)
	got := testutil.KernelTree(t, filepath.Join(mnt, "suse01.img", "p2"))
	for k, n := range want { // the tree's own directory sizes and xattrs are btrfs's, not the source's
		g := got[k]
		if n.Mode.IsDir() {
			n.Nlink, n.Size = g.Nlink, g.Size
		}
		n.Xattrs = g.Xattrs
		want[k] = n
	}
	testutil.CompareTrees(t, want, got)
}

// TestLinuxFedoraBtrfs: Fedora Workstation's layout made by the kernel
// (subvolumes "root" and "home" under the top level, zstd compression):
// inspect finds the guest in the root subvolume, and the tree through
// FUSE is the kernel's, compressed files included.
func TestLinuxFedoraBtrfs(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.btrfs", "btrfs-progs")
	fs := filepath.Join(t.TempDir(), "btrfs.img")
	sparseFile(t, fs, 200*mib)
	run(t, "mkfs.btrfs", "-q", "-f", "-L", "fedora", fs)
	kmnt := t.TempDir()
	run(t, "mount", "-o", "loop,compress-force=zstd", fs, kmnt)
	run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(kmnt, "root"))
	run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(kmnt, "home"))
	must(t, os.MkdirAll(filepath.Join(kmnt, "root", "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(kmnt, "root", "etc", "os-release"), []byte("NAME=\"Fedora Linux\"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME=\"Fedora Linux 40 (Workstation Edition)\"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(kmnt, "root", "etc", "hostname"), []byte("ws01\n"), 0o644))
	writeFile(t, filepath.Join(kmnt, "root", "usr", "lib64", "libx.so"), 2<<20)
	must(t, os.WriteFile(filepath.Join(kmnt, "root", "usr", "README"), []byte(strings.Repeat("compressible text ", 20000)), 0o644))
	must(t, os.MkdirAll(filepath.Join(kmnt, "home", "user"), 0o700))
	must(t, os.WriteFile(filepath.Join(kmnt, "home", "user", ".bashrc"), []byte("alias ll='ls -l'\n"), 0o644))
	run(t, "umount", kmnt)
	run(t, "mount", "-o", "loop,ro", fs, kmnt)
	want := testutil.KernelTree(t, kmnt)
	run(t, "umount", kmnt)

	lib := t.TempDir()
	img := filepath.Join(lib, "ws01.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 4, typ: "U"}, {sizeMiB: 200, typ: "L", fs: fs}})
	var inf struct {
		OS struct {
			ProductName string `json:"product_name"`
			Hostname    string `json:"hostname"`
		} `json:"os"`
	}
	out := mustOffvm(t, "inspect", "--json", img)
	must(t, json.Unmarshal([]byte(out), &inf))
	if inf.OS.ProductName != "Fedora Linux 40 (Workstation Edition)" || inf.OS.Hostname != "ws01" {
		t.Fatalf("inspect: %+v\n%s", inf.OS, out)
	}
	mnt := mountLib(t, lib)
	testutil.CompareTrees(t, want, testutil.KernelTree(t, filepath.Join(mnt, "ws01.img", "p2")))
}
