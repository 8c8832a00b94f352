package fat

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestGPTEFIPartition writes an EFI system partition (FAT32) inside a GPT
// disk, as found in UEFI guests, and checks the partition with fsck.fat
// and mtools and that nothing outside it changed.
func TestGPTEFIPartition(t *testing.T) {
	requireTools(t)
	testutil.RequireTool(t, "sfdisk", "fdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	runStdin(t, "label: gpt\nstart=2048, size=120000, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n", "sfdisk", "-q", img)
	var pt struct {
		PartitionTable struct {
			Partitions []struct{ Start, Size int64 }
		}
	}
	if err := json.Unmarshal([]byte(testutil.Run(t, "sfdisk", "-J", img)), &pt); err != nil {
		t.Fatal(err)
	}
	p := pt.PartitionTable.Partitions[0]
	testutil.Run(t, "mkfs.vfat", "-F", "32", "-s", "1", "-n", "SYSTEM", "--offset", "2048", img, "60000")
	before := outside(t, img, p.Start*512, p.Size*512)

	v, err := Open(openDev(t, img, p.Start*512, p.Size*512), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Type() != "fat32" || v.Label() != "SYSTEM" {
		t.Fatalf("type %s label %q", v.Type(), v.Label())
	}
	e := &env{t: t, v: v, img: img, m: newModel()}
	e.mkdir("/EFI")
	e.mkdir("/EFI/Boot")
	e.create("/EFI/Boot/bootx64.efi", pattern(300_000, 5))
	e.mkdir("/EFI/Microsoft")
	e.mkdir("/EFI/Microsoft/Boot")
	e.create("/EFI/Microsoft/Boot/BCD", pattern(32768, 6))
	e.create("/EFI/Microsoft/Boot/bootmgfw.efi", pattern(1_500_000, 7))
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
	if after := outside(t, img, p.Start*512, p.Size*512); after != before {
		t.Fatal("bytes outside the partition changed")
	}
	if out := mtools(t, "mdir", "-/", "-b", "-i", img+"@@1M", "::"); !strings.Contains(out, "::/EFI/Microsoft/Boot/bootmgfw.efi") {
		t.Fatalf("mdir on the whole disk shows\n%s", out)
	}
	// fsck.fat has no offset option: check a copy of the partition.
	part := filepath.Join(t.TempDir(), "part.img")
	src, _ := os.Open(img)
	defer src.Close()
	dst, _ := os.Create(part)
	if _, err := io.Copy(dst, io.NewSectionReader(src, p.Start*512, p.Size*512)); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	checkMtools(t, part, e.m)
}

// outside hashes the disk without the partition's bytes.
func outside(t *testing.T, img string, off, size int64) [32]byte {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(bytes.Join([][]byte{b[:off], b[off+size:]}, nil))
}

func runStdin(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}
