package updates

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLZXCabinets reads LZX cabinets made by Microsoft's tools and
// compares every file with cabextract's. The cabinets are libmspack's
// test files (LGPL), not kept here: set OFFVM_CAB_SAMPLES to a folder
// holding them (cabextract/test/cabs/mixed.cab: an MSZIP, an LZX:18 and a
// Quantum folder; large-files-cab.cab: 14 MiB in 449 LZX:21 blocks).
func TestLZXCabinets(t *testing.T) {
	dir := os.Getenv("OFFVM_CAB_SAMPLES")
	if dir == "" {
		t.Skip("OFFVM_CAB_SAMPLES not set (a folder with libmspack's mixed.cab and large-files-cab.cab)")
	}
	if _, err := exec.LookPath("cabextract"); err != nil {
		t.Skip("cabextract not installed")
	}
	for _, name := range []string{"mixed.cab", "large-files-cab.cab"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
		out := t.TempDir()
		exec.Command("cabextract", "-q", "-d", out, p).Run()
		c := openCab(t, p)
		for i := range c.Files {
			f := &c.Files[i]
			want, werr := os.ReadFile(filepath.Join(out, f.Name))
			if compress := c.folders[f.Folder].compress & 0xf; compress == compQuantum {
				continue // not read by offvm (no update package uses it)
			}
			got, err := c.ReadFile(f, 1<<30)
			if werr != nil || err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s: ours %d bytes (%v), cabextract %d (%v)", name, f.Name, len(got), err, len(want), werr)
			}
		}
	}
}

func openCab(t *testing.T, p string) *Cabinet {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	c, err := OpenCabinet(f, st.Size(), p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
