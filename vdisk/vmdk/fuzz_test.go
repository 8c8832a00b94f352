package vmdk

import (
	"errors"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// boundedFile refuses writes far past the end, where a fuzzed flat extent
// offset would make a MemFile grow without bound (a host file would just
// be sparse).
type boundedFile struct{ *vdisk.MemFile }

func (b boundedFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > 64<<20 {
		return 0, errors.New("fuzz: write too far")
	}
	return b.MemFile.WriteAt(p, off)
}

// FuzzOpen opens fuzzed bytes as a sparse extent or a descriptor (whose
// extent files are the same bytes), reads a few blocks and writes a few.
func FuzzOpen(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer testutil.Watchdog("opening a fuzzed image", testutil.FuzzStallLimit)()
		open := func(path string, writable bool) (vdisk.File, error) {
			return boundedFile{vdisk.NewMemFile(path, data)}, nil
		}
		opts := vdisk.Options{Writable: true, OpenFile: open}
		file, _ := open("fuzz.vmdk", true)
		Match(file)
		d, err := Open(file, opts)
		if err != nil {
			return
		}
		defer d.Close()
		size := d.Size()
		buf := make([]byte, 20000)
		for _, off := range []int64{0, size / 2, size - 4097, size - 100} {
			if off >= 0 {
				d.ReadAt(buf, off)
			}
		}
		for i, off := range []int64{0, size / 3, size - 5000} {
			if off >= 0 && off+5000 <= size {
				d.WriteAt(buf[i*100:i*100+5000], off)
			}
		}
		d.Flush()
		d.ReadAt(buf, 0)
	})
}
