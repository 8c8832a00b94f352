package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// infoOf reads an image's info.json through the mount.
func infoOf(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		t.Fatalf("info.json: %v", err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("info.json is not JSON: %v\n%s", err, b)
	}
	return v
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestLibraryTree: folders mirrored, images by content not name, an MBR
// disk and a bare file system, a broken image that costs nobody else, and
// a new image that appears without remounting.
func TestLibraryTree(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, treeOptions{unicode: true, symlinks: true, deep: 20})
	ext := makeExt4(t, src, 32, "ROOTFS")

	lib := t.TempDir()
	os.MkdirAll(filepath.Join(lib, "linux", "nested"), 0o755)
	makeDisk(t, filepath.Join(lib, "linux", "nested", "server.disk"), "dos", []part{{sizeMiB: 34, typ: "83", fs: ext}})
	// a bare file system, with no partition table, named like a text file
	bare := filepath.Join(lib, "bare-fs.txt")
	if b, err := os.ReadFile(ext); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(bare, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// a broken image: an MBR whose partition runs past the end of the disk
	broken := filepath.Join(lib, "broken.img")
	sparseFile(t, broken, 1*mib)
	mbr := make([]byte, 512)
	mbr[446+4] = 0x83
	copy(mbr[446+8:], []byte{0x00, 0x08, 0, 0, 0x00, 0x00, 0x10, 0}) // start 2048, 1 Mi sectors
	mbr[510], mbr[511] = 0x55, 0xAA
	writeAt(t, broken, mbr, 0)
	os.WriteFile(filepath.Join(lib, "notes.txt"), []byte("not an image\n"), 0o644)

	mnt := mountLib(t, lib)

	if got := strings.Join(listNames(t, mnt), ","); got != "bare-fs.txt,broken.img,linux" {
		t.Errorf("library root lists %q, want the two images and the folder (notes.txt is no image)", got)
	}
	server := filepath.Join(mnt, "linux", "nested", "server.disk")
	if got := strings.Join(listNames(t, server), ","); got != "disk,info.json,p1,raw" {
		t.Errorf("image directory lists %q", got)
	}
	compareTrees(t, src, filepath.Join(server, "p1"), "lost+found")
	compareTrees(t, src, filepath.Join(mnt, "bare-fs.txt", "p0"), "lost+found")

	inf := infoOf(t, server)
	if inf["format"] != "raw" || inf["partition_table"] != "mbr" {
		t.Errorf("info.json: format %v, table %v", inf["format"], inf["partition_table"])
	}
	parts := inf["partitions"].([]any)
	p1 := parts[0].(map[string]any)
	if p1["filesystem"] != "ext4" || p1["label"] != "ROOTFS" || p1["number"] != 1.0 {
		t.Errorf("info.json partition 1: %v", p1)
	}

	// the disk file is the raw virtual disk, byte for byte
	want, _ := os.ReadFile(filepath.Join(lib, "linux", "nested", "server.disk"))
	got, err := os.ReadFile(filepath.Join(server, "disk"))
	if err != nil || string(got) != string(want) {
		t.Errorf("disk differs from the raw image (%v)", err)
	}
	if err := os.WriteFile(filepath.Join(server, "disk"), []byte("x"), 0o644); err == nil {
		t.Errorf("writing disk succeeded; it is read-only")
	}

	// the broken image shows only its info.json, with the error
	if got := strings.Join(listNames(t, filepath.Join(mnt, "broken.img")), ","); got != "info.json" {
		t.Errorf("broken image lists %q, want only info.json", got)
	}
	binf := infoOf(t, filepath.Join(mnt, "broken.img"))
	if e, _ := binf["error"].(string); !strings.Contains(e, "broken.img") || !strings.Contains(e, "past") {
		t.Errorf("broken image's error should name the file and the cause: %q", e)
	}

	// a new image appears without remounting
	if b, err := os.ReadFile(ext); err == nil {
		os.WriteFile(filepath.Join(lib, "linux", "late.img"), b, 0o644)
	}
	deadline := 50
	for ; deadline > 0; deadline-- {
		if _, err := os.Stat(filepath.Join(mnt, "linux", "late.img", "p0", "size-1.bin")); err == nil {
			break
		}
		sleepMs(100)
	}
	if deadline == 0 {
		t.Errorf("an image added to the library did not appear in the mount")
	}
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
