package ntfs

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// FuzzSplitWrite patches bytes into the records of a file with an
// $ATTRIBUTE_LIST (and its extension records) of a real volume, then
// truncates and writes that file: errors are fine, panics and hangs are not.
func FuzzSplitWrite(f *testing.F) {
	gz, err := os.Open(testutil.Corpus(f, "dfir_ntfs/ntfs3_attrlist.raw.gz"))
	if err != nil {
		f.Fatal(err)
	}
	zr, err := gzip.NewReader(gz)
	if err != nil {
		f.Fatal(err)
	}
	base, err := io.ReadAll(zr)
	gz.Close()
	if err != nil || len(base) < 512 {
		f.Fatalf("corpus volume: %v", err)
	}
	mft := binary.LittleEndian.Uint64(base[0x30:]) * uint64(base[0x0d]) * uint64(binary.LittleEndian.Uint16(base[0x0b:]))
	const first, span = 27, 14 * 1024 // 1.txt's base record and its extension records
	f.Add([]byte{}, uint16(0), uint32(3<<20), uint32(100))
	f.Add([]byte{0xff, 0xff}, uint16(0x1a0), uint32(10), uint32(0))
	f.Add([]byte{0x00, 0x10}, uint16(1024+0x98), uint32(1<<20), uint32(4096))
	f.Fuzz(func(t *testing.T, patch []byte, at uint16, size, off uint32) {
		img := bytes.Clone(base)
		pos := int(mft) + first*1024 + int(at)%span
		copy(img[pos:min(len(img), pos+len(patch))], patch)
		v, err := Open(&memDev{img}, Options{})
		if err != nil {
			return
		}
		a, err := v.Lookup(v.Root(), "1.txt")
		if err != nil {
			return
		}
		v.Truncate(a.Ino, int64(size%(4<<20)))
		v.WriteAt(a.Ino, make([]byte, 65536), int64(off%(4<<20)))
		v.Truncate(a.Ino, int64(off%(1<<20)))
		exercise(v)
	})
}
