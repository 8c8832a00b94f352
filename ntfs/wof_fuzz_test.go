package ntfs

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fuzzChunk decodes arbitrary bytes into an output of a chosen size and
// checks the decoder leaves its input alone and gives the same answer
// twice; Go's bounds checks catch any read outside the input.
func fuzzChunk(t *testing.T, dec func(in, out []byte) error, in []byte, size int) {
	keep := bytes.Clone(in)
	a, b := make([]byte, size), make([]byte, size)
	errA, errB := dec(in, a), dec(in, b)
	if !bytes.Equal(in, keep) {
		t.Fatal("decoder changed its input")
	}
	if (errA == nil) != (errB == nil) || (errA == nil && !bytes.Equal(a, b)) {
		t.Fatal("decoder is not deterministic")
	}
}

// FuzzXpress decodes arbitrary XPRESS Huffman chunks of up to 16 KiB.
func FuzzXpress(f *testing.F) {
	f.Add(make([]byte, 256), uint16(4096))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		fuzzChunk(t, xpressDecompress, in, int(size)%16384+1)
	})
}

// FuzzLZX decodes arbitrary LZX chunks of up to 32 KiB.
func FuzzLZX(f *testing.F) {
	f.Add([]byte{0x30, 0x00, 0x00, 0x10, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b'}, uint16(2))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		fuzzChunk(t, lzxDecompress, in, int(size)%32768+1)
	})
}

// TestWriteWOFFuzzSeeds refreshes the committed seeds from wimlib's
// chunks when OFFVM_WRITE_WOF_SEEDS is set.
func TestWriteWOFFuzzSeeds(t *testing.T) {
	if os.Getenv("OFFVM_WRITE_WOF_SEEDS") == "" {
		t.Skip("set OFFVM_WRITE_WOF_SEEDS=1 to rewrite testdata/fuzz/FuzzXpress and FuzzLZX")
	}
	samples := wofSamples(t)
	dir := writeSamples(t, samples)
	for _, c := range wimCases {
		target := "FuzzXpress"
		if c.format == wofFormatLZX {
			target = "FuzzLZX"
		}
		blobs, _ := captureWIM(t, dir, c)
		for _, name := range []string{"one-chunk", "x86-calls", "repeat"} {
			bl, ok := blobs[sha1.Sum(samples[name])]
			if !ok {
				continue
			}
			n := int((bl.size + int64(c.chunk) - 1) / int64(c.chunk))
			table := (n - 1) * 4
			end := len(bl.resource)
			if n > 1 {
				end = table + int(uint32(bl.resource[0])|uint32(bl.resource[1])<<8|uint32(bl.resource[2])<<16|uint32(bl.resource[3])<<24)
			}
			chunk := bl.resource[table:end]
			size := min(c.chunk, int(bl.size))
			text := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nuint16(%d)\n", strconv.Quote(string(chunk)), size-1)
			p := filepath.Join("testdata", "fuzz", target, c.name+"-"+name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
