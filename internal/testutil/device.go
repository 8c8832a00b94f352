package testutil

import (
	"os"
	"syscall"
	"testing"
)

// FileDevice is a host file as a volume.Device, for engine tests.
type FileDevice struct {
	*os.File
	readOnly bool
}

// OpenDevice opens path as a device, closed when the test ends; a
// read-only one refuses writes with EROFS.
func OpenDevice(t testing.TB, path string, writable bool) *FileDevice {
	t.Helper()
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &FileDevice{f, !writable}
}

func (d *FileDevice) Size() int64 {
	st, err := d.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

func (d *FileDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly {
		return 0, syscall.EROFS
	}
	return d.File.WriteAt(p, off)
}
