package tests

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPTWindowsLikeDisk is the foundation's main case: a GPT disk with an
// EFI FAT32 partition, a 16 MiB partition with no file system, an NTFS
// partition filled through ntfs-3g (a 2,500-entry directory, a 20-level
// path, a compressed file, a sparse file, an alternate data stream) and
// an ext4 partition. Every file read through offvm equals what the tools
// put there.
func TestGPTWindowsLikeDisk(t *testing.T) {
	efiSrc := t.TempDir()
	writeFile(t, filepath.Join(efiSrc, "EFI", "Boot", "bootx64.efi"), 150000)
	writeFile(t, filepath.Join(efiSrc, "EFI", "Microsoft", "Boot", "BCD"), 32768)
	writeFile(t, filepath.Join(efiSrc, "startup.nsh"), 20)
	fat := makeFAT(t, efiSrc, 40, 32, "SYSTEM")

	ntfsSrc := t.TempDir()
	makeTree(t, ntfsSrc, treeOptions{bigDir: 2500, deep: 20, unicode: true})
	ntfs := makeNTFS(t, 96, "Windows", func(dir string) {
		run(t, "cp", "-r", ntfsSrc+"/.", dir)
		// a compressed directory: files created in it are LZNT1-compressed
		os.Mkdir(filepath.Join(dir, "Compressed"), 0o755)
		run(t, "setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000810", filepath.Join(dir, "Compressed"))
		text := strings.Repeat("compressible text, line after line\n", 20000)
		os.WriteFile(filepath.Join(dir, "Compressed", "log.txt"), []byte(text), 0o644)
		requireAttrib(t, filepath.Join(dir, "Compressed", "log.txt"), 0x800, "compressed")
		// a sparse file: 64 MiB with data in two places
		f, _ := os.Create(filepath.Join(dir, "sparse.bin"))
		f.WriteAt([]byte("start"), 0)
		f.WriteAt([]byte("middle"), 40<<20)
		f.Truncate(64 << 20)
		f.Close()
		requireAttrib(t, filepath.Join(dir, "sparse.bin"), 0x200, "sparse")
		run(t, "setfattr", "-n", "user.Zone.Identifier", "-v", "[ZoneTransfer]", filepath.Join(dir, "size-1.bin"))
		// mirror the extras into the source for comparison
		os.MkdirAll(filepath.Join(ntfsSrc, "Compressed"), 0o755)
		os.WriteFile(filepath.Join(ntfsSrc, "Compressed", "log.txt"), []byte(text), 0o644)
		run(t, "cp", "--sparse=always", filepath.Join(dir, "sparse.bin"), filepath.Join(ntfsSrc, "sparse.bin"))
	})
	extSrc := t.TempDir()
	makeTree(t, extSrc, treeOptions{symlinks: true})
	ext := makeExt4(t, extSrc, 32, "linux")

	lib := t.TempDir()
	img := filepath.Join(lib, "win.img")
	makeDisk(t, img, "gpt", []part{
		{sizeMiB: 40, typ: "U", fs: fat},
		{sizeMiB: 16, typ: "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"},
		{sizeMiB: 96, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs},
		{sizeMiB: 32, typ: "L", fs: ext},
	})
	mnt := mountLib(t, lib, "--ro")
	dir := filepath.Join(mnt, "win.img")
	if got := strings.Join(listNames(t, dir), ","); got != "disk,info.json,p1,p3,p4,raw" {
		t.Errorf("image lists %q: want p2 (no file system) left out", got)
	}
	compareTrees(t, efiSrc, filepath.Join(dir, "p1"))
	compareTrees(t, ntfsSrc, filepath.Join(dir, "p3"), "System Volume Information")
	compareTrees(t, extSrc, filepath.Join(dir, "p4"), "lost+found")

	// case-insensitive lookups on NTFS and FAT, case kept in listings
	for _, p := range []string{"p3/docs/MIXED CASE NAME.txt", "p1/efi/BOOT/BOOTX64.EFI"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("case-insensitive lookup of %s: %v", p, err)
		}
	}
	// the alternate data stream is an xattr, as ntfs-3g shows it
	out, err := exec.Command("getfattr", "--only-values", "-n", "user.Zone.Identifier", filepath.Join(dir, "p3", "size-1.bin")).Output()
	if err != nil || string(out) != "[ZoneTransfer]" {
		t.Errorf("ADS as xattr: %q, %v", out, err)
	}
	// info.json names each partition's file system and label
	parts := infoOf(t, dir)["partitions"].([]any)
	want := map[float64][2]string{1: {"fat32", "SYSTEM"}, 3: {"ntfs", "Windows"}, 4: {"ext4", "linux"}}
	for _, p := range parts {
		m := p.(map[string]any)
		w, ok := want[m["number"].(float64)]
		if !ok {
			if m["filesystem"] != nil {
				t.Errorf("partition %v: file system %v, want none", m["number"], m["filesystem"])
			}
			continue
		}
		if m["filesystem"] != w[0] || m["label"] != w[1] {
			t.Errorf("partition %v: %v %v, want %v", m["number"], m["filesystem"], m["label"], w)
		}
	}
}

// requireAttrib checks, through ntfs-3g, that a file carries a Windows
// attribute bit: the test is void if the file is not really compressed or
// sparse on disk.
func requireAttrib(t *testing.T, path string, bit uint32, what string) {
	t.Helper()
	out, err := exec.Command("getfattr", "--only-values", "-n", "system.ntfs_attrib_be", path).Output()
	if err != nil || len(out) != 4 {
		t.Fatalf("getfattr %s: %q, %v", path, out, err)
	}
	if v := binary.BigEndian.Uint32(out); v&bit == 0 {
		t.Fatalf("%s is not %s on disk (attributes %q)", path, what, out)
	}
}
