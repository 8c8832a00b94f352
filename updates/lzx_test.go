package updates

import (
	"bytes"
	"encoding/binary"
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

// lzxStoredCab hand-builds a cabinet whose one LZX:15 folder holds the
// data as stored LZX blocks (sizes as given; odd sizes carry the pad
// byte), cut into 32 KiB frames, one per CFDATA.
func lzxStoredCab(data []byte, blocks []int) []byte {
	var stream []byte // the LZX bit stream
	var frameEnds []int
	first := true
	pos := 0
	for _, n := range blocks {
		var bits []int
		if first {
			bits = append(bits, 0) // no E8 translation
			first = false
		}
		bits = append(bits, 0, 1, 1) // block type 3
		for i := 23; i >= 0; i-- {
			bits = append(bits, n>>i&1)
		}
		for len(bits)%16 != 0 {
			bits = append(bits, 0)
		}
		for i := 0; i < len(bits); i += 16 {
			w := 0
			for _, b := range bits[i : i+16] {
				w = w<<1 | b
			}
			stream = append(stream, byte(w), byte(w>>8))
		}
		for i := 0; i < 3; i++ {
			stream = binary.LittleEndian.AppendUint32(stream, 1)
		}
		for i := 0; i < n; i++ {
			stream = append(stream, data[pos])
			pos++
			if pos%32768 == 0 || pos == len(data) {
				frameEnds = append(frameEnds, len(stream))
			}
		}
		if n&1 == 1 {
			stream = append(stream, 0)
		}
	}
	var cab bytes.Buffer
	name := "data.bin\x00"
	dataStart := 36 + 8 + 16 + len(name)
	le := binary.LittleEndian
	hdr := make([]byte, 36)
	copy(hdr, "MSCF")
	le.PutUint32(hdr[16:], 36+8) // coffFiles
	hdr[24], hdr[25] = 3, 1
	le.PutUint16(hdr[26:], 1)
	le.PutUint16(hdr[28:], 1)
	fo := make([]byte, 8)
	le.PutUint32(fo, uint32(dataStart))
	le.PutUint16(fo[4:], uint16(len(frameEnds)))
	le.PutUint16(fo[6:], 3|15<<8)
	fi := make([]byte, 16)
	le.PutUint32(fi, uint32(len(data)))
	le.PutUint16(fi[14:], 0x20)
	var body bytes.Buffer
	prev := 0
	for k, end := range frameEnds {
		ucb := 32768
		if k == len(frameEnds)-1 {
			ucb = len(data) - k*32768
		}
		if k == len(frameEnds)-1 {
			end = len(stream) // the last pad byte goes with the last frame
		}
		d := make([]byte, 8)
		le.PutUint16(d[4:], uint16(end-prev))
		le.PutUint16(d[6:], uint16(ucb))
		body.Write(d)
		body.Write(stream[prev:end])
		prev = end
	}
	le.PutUint32(hdr[8:], uint32(dataStart+body.Len()))
	cab.Write(hdr)
	cab.Write(fo)
	cab.Write(fi)
	cab.WriteString(name)
	cab.Write(body.Bytes())
	return cab.Bytes()
}

// TestLZXStoredBlocks: LZX stored blocks (odd and even, spanning frames
// and CFDATA blocks), read by us and by cabextract.
func TestLZXStoredBlocks(t *testing.T) {
	if _, err := exec.LookPath("cabextract"); err != nil {
		t.Skip("cabextract not installed")
	}
	data := make([]byte, 100000)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	p := filepath.Join(t.TempDir(), "stored-lzx.cab")
	must(t, os.WriteFile(p, lzxStoredCab(data, []int{40001, 59999}), 0o644))
	out := t.TempDir()
	if b, err := exec.Command("cabextract", "-q", "-d", out, p).CombinedOutput(); err != nil {
		t.Fatalf("cabextract rejects the test cabinet: %v\n%s", err, b)
	}
	want, _ := os.ReadFile(filepath.Join(out, "data.bin"))
	c := openCab(t, p)
	got, err := c.ReadFile(&c.Files[0], 1<<20)
	if err != nil || !bytes.Equal(got, want) || !bytes.Equal(want, data) {
		t.Fatalf("ours %d bytes (%v), cabextract %d, source %d", len(got), err, len(want), len(data))
	}
}
