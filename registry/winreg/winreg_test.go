package winreg

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

// countReader counts the reads that reach the file.
type countReader struct {
	io.ReaderAt
	reads int
}

func (c *countReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.ReaderAt.ReadAt(p, off)
}

// TestHeadReader: reads within a hive's head are served from the one
// read made at open, with the file's bytes; reads past it or across its
// end reach the file and read as the file does, end of file included;
// a file shorter than the head is read whole once.
func TestHeadReader(t *testing.T) {
	for _, size := range []int{hiveHeadBytes + 100_000, 5000} {
		data := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(data)
		file := &countReader{ReaderAt: bytes.NewReader(data)}
		r := withHead(file, int64(size))
		if file.reads != 1 {
			t.Fatalf("size %d: %d reads at open, want 1", size, file.reads)
		}
		check := func(off int64, n int, fromFile bool) {
			t.Helper()
			before := file.reads
			got := make([]byte, n)
			gn, gerr := r.ReadAt(got, off)
			want := make([]byte, n)
			wn, werr := bytes.NewReader(data).ReadAt(want, off)
			if gn != wn || (gerr == nil) != (werr == nil) || !bytes.Equal(got[:gn], want[:wn]) {
				t.Errorf("size %d: read of %d at %d: %d bytes, %v; the file gives %d, %v", size, n, off, gn, gerr, wn, werr)
			}
			if reached := file.reads > before; reached != fromFile {
				t.Errorf("size %d: read of %d at %d reached the file: %v, want %v", size, n, off, reached, fromFile)
			}
		}
		head := int64(min(size, hiveHeadBytes))
		check(0, 4096, false)
		check(head-4096, 4096, false)
		check(4096, 1, false)
		check(head-10, 20, true) // across the head's end
		check(int64(size)+10, 10, true)
		if int64(size) > head {
			check(head, 4096, true)
		}
	}
}
