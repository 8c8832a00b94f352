package ntfs

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestWriteWOFFuzzSeeds refreshes the committed seeds from wimlib's
// chunks when OFFVM_WRITE_WOF_SEEDS is set.
func TestWriteWOFFuzzSeeds(t *testing.T) {
	if os.Getenv("OFFVM_WRITE_WOF_SEEDS") == "" {
		t.Skip("set OFFVM_WRITE_WOF_SEEDS=1 to rewrite internal/compress/testdata/fuzz/FuzzXpress and FuzzLZX")
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
			p := filepath.Join("..", "internal", "compress", "testdata", "fuzz", target, c.name+"-"+name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
