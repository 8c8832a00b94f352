package updates

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCabinet: any bytes as a cabinet parse or fail with an error, and
// every file reads to its end or fails; never a panic or a runaway.
func FuzzCabinet(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.cab")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("MSCF\x00\x00\x00\x00"))
	// the MSZIP seed relabelled LZX:15 and LZX:21, so the fuzzer reaches
	// the LZX decoder at once
	if b, err := os.ReadFile("testdata/mszip.cab"); err == nil && len(b) > 44 {
		for _, typ := range []uint16{0x0f03, 0x1503} {
			l := append([]byte(nil), b...)
			binary.LittleEndian.PutUint16(l[42:], typ)
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := OpenCabinet(bytes.NewReader(data), int64(len(data)), "fuzz.cab")
		if err != nil {
			return
		}
		for i := range c.Files {
			// a folder may legally expand to gigabytes; keep each run short
			if i > 2 || c.Files[i].Offset > 256<<10 {
				break
			}
			r, err := c.Open(&c.Files[i])
			if err != nil {
				continue
			}
			io.Copy(io.Discard, io.LimitReader(r, 64<<10))
		}
	})
}

// FuzzManifest: update.mum and pkgProperties.txt parsing never panics.
func FuzzManifest(f *testing.F) {
	if b, err := os.ReadFile("testdata/update.mum"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`<assembly><assemblyIdentity name="a" version="1.2.3.4"/><package identifier="KB1234567"><parent><assemblyIdentity version="10.0.17763.1"/></parent></package></assembly>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := parseMum(data, "fuzz"); err == nil && m.Identity.Name == "" {
			t.Fatal("accepted a manifest without a name")
		}
		parseProperties(data)
	})
}
