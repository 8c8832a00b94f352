package mount

import (
	"io"

	"github.com/offvm/offvm/vdisk"
)

// window is a partition: a byte range of the virtual disk, presented as a
// volume.Device. Accesses outside the range are refused, so an engine bug
// can never touch a neighbouring partition.
type window struct {
	disk  vdisk.Disk
	start int64
	size  int64
}

func (w *window) Size() int64 { return w.size }

func (w *window) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= w.size {
		return 0, io.EOF
	}
	short := false
	if rem := w.size - off; int64(len(p)) > rem {
		p, short = p[:rem], true
	}
	n, err := w.disk.ReadAt(p, w.start+off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (w *window) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > w.size {
		return 0, vdisk.ErrOutOfRange
	}
	return w.disk.WriteAt(p, w.start+off)
}

// DiskRange is where the file system's bytes lie on the virtual disk;
// ok is false when a layer (LVM, BitLocker, LUKS) maps them elsewhere.
func (v *Volume) DiskRange() (start, size int64, ok bool) {
	w, ok := v.Dev.(*window)
	if !ok {
		return 0, 0, false
	}
	return w.start, w.size, true
}
