package vdisk

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// osFile adapts *os.File to File.
type osFile struct{ *os.File }

// OpenOSFile opens a host file, read-write when writable is set.
func OpenOSFile(path string, writable bool) (File, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Advise tells the kernel that n bytes at off will be read soon: it reads
// them in one request, in the background (posix_fadvise WILLNEED).
func (f osFile) Advise(off, n int64) {
	unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}

// WrapOSFile adapts an already open *os.File.
func WrapOSFile(f *os.File) File { return osFile{f} }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return st.Size(), nil
}
