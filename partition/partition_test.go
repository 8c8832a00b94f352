package partition

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// sfdiskView is what sfdisk (not our reader) says of a disk.
type sfdiskView struct {
	PartitionTable struct {
		Label      string `json:"label"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func sfdiskJSON(t *testing.T, path string) sfdiskView {
	t.Helper()
	var v sfdiskView
	if err := json.Unmarshal([]byte(testutil.Run(t, "sfdisk", "--json", path)), &v); err != nil {
		t.Fatal(err)
	}
	if v.PartitionTable.SectorSize == 0 {
		v.PartitionTable.SectorSize = 512
	}
	return v
}

// compareWithSfdisk checks numbers, starts and sizes against sfdisk's
// answer; extended containers (MBR types 5, f, 85) are not volumes.
func compareWithSfdisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, err := Read(f, st.Size())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	v := sfdiskJSON(t, path)
	ss := v.PartitionTable.SectorSize
	want := map[int][2]int64{}
	for _, p := range v.PartitionTable.Partitions {
		var n int
		fmt.Sscanf(p.Node[strings.LastIndexAny(p.Node, "abcdefghijklmnopqrstuvwxyz")+1:], "%d", &n)
		if t := strings.ToLower(p.Type); t == "5" || t == "f" || t == "85" {
			continue
		}
		want[n] = [2]int64{p.Start * ss, p.Size * ss}
	}
	if len(tab.Partitions) != len(want) {
		t.Errorf("%d partitions, sfdisk says %d", len(tab.Partitions), len(want))
	}
	for _, p := range tab.Partitions {
		if w, ok := want[p.Number]; !ok || w != [2]int64{p.Start, p.Size} {
			t.Errorf("partition %d at %d size %d; sfdisk: %v (present %v)", p.Number, p.Start, p.Size, w, ok)
		}
	}
	wantKind := map[string]string{"dos": "mbr", "gpt": "gpt"}[v.PartitionTable.Label]
	if tab.Kind != wantKind {
		t.Errorf("kind %q, want %q", tab.Kind, wantKind)
	}
}

func TestTablesAgainstSfdisk(t *testing.T) {
	testutil.RequireTool(t, "sfdisk", "fdisk")
	cases := []struct{ name, script string }{
		{"gpt", "label: gpt\nsize=10MiB, type=U\nsize=16MiB, type=L\nsize=5MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n"},
		{"mbr-primary", "label: dos\nsize=10MiB, type=7\nsize=10MiB, type=83, bootable\n"},
		{"mbr-logical", "label: dos\nsize=8MiB, type=c\nsize=30MiB, type=5\nsize=8MiB, type=7\nsize=8MiB, type=83\nsize=4MiB, type=6\n"},
		{"gpt-sparse-slots", "label: gpt\n3: size=4MiB, type=L\n7: size=4MiB, type=U\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "disk")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Truncate(p, 64<<20)
			cmd := exec.Command("sfdisk", "-q", p)
			cmd.Stdin = strings.NewReader(c.script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk: %v\n%s", err, out)
			}
			compareWithSfdisk(t, p)
		})
	}
}

// TestWindowsExtendedPartitions reads a disk partitioned by Windows with
// logical drives in an extended partition: numbered as Linux numbers them.
func TestWindowsExtendedPartitions(t *testing.T) {
	testutil.RequireTool(t, "sfdisk", "fdisk")
	src := testutil.Corpus(t, "dfir_ntfs/mbr-win-512.raw.tar")
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(h.Name))
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, tr); err != nil {
		t.Fatal(err)
	}
	w.Close()
	compareWithSfdisk(t, out)
}

func TestNoTable(t *testing.T) {
	bootSector := make([]byte, 4096)
	copy(bootSector[3:], "NTFS    ")
	bootSector[510], bootSector[511] = 0x55, 0xAA
	for name, b := range map[string][]byte{"zeros": make([]byte, 4096), "ntfs-boot-sector": bootSector} {
		tab, err := Read(readerAt(b), int64(len(b)))
		if err != nil || tab.Kind != "" || len(tab.Partitions) != 0 {
			t.Errorf("%s: %+v, %v; want no table", name, tab, err)
		}
	}
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r)) {
		return 0, io.EOF
	}
	n := copy(p, r[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func FuzzRead(f *testing.F) {
	mbr := make([]byte, 8192)
	mbr[446+4], mbr[446+8], mbr[446+12] = 0x05, 1, 4
	mbr[510], mbr[511] = 0x55, 0xAA
	f.Add(mbr)
	gpt := make([]byte, 8192)
	gpt[446+4], gpt[510], gpt[511] = 0xEE, 0x55, 0xAA
	copy(gpt[512:], "EFI PART")
	f.Add(gpt)
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Read(readerAt(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, p := range tab.Partitions {
			if p.Start < 0 || p.Size < 0 || p.Start+p.Size > int64(len(b)) {
				t.Fatalf("partition %d outside the disk: %+v", p.Number, p)
			}
		}
	})
}
