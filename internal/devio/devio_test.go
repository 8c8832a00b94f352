package devio

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
)

type memDev struct {
	b     []byte
	fail  error
	short bool
}

func (d *memDev) Size() int64 { return int64(len(d.b)) }
func (d *memDev) WriteAt(p []byte, off int64) (int, error) {
	if d.fail != nil {
		return 0, d.fail
	}
	n := copy(d.b[off:], p)
	if d.short {
		n--
	}
	return n, nil
}

func TestWrite(t *testing.T) {
	pathErr := &os.PathError{Op: "write", Path: "/lib/web01.qcow2", Err: syscall.ENOSPC}
	cases := []struct {
		name   string
		dev    *memDev
		off    int64
		len    int
		ok     bool
		target error // errors.Is target besides EIO
	}{
		{"inside", &memDev{b: make([]byte, 16)}, 4, 8, true, nil},
		{"to the end", &memDev{b: make([]byte, 16)}, 8, 8, true, nil},
		{"past the end", &memDev{b: make([]byte, 16)}, 12, 8, false, errOutside},
		{"negative", &memDev{b: make([]byte, 16)}, -1, 1, false, errOutside},
		{"device error", &memDev{b: make([]byte, 16), fail: pathErr}, 0, 4, false, syscall.ENOSPC},
		{"short write", &memDev{b: make([]byte, 16), short: true}, 0, 4, false, io.ErrShortWrite},
	}
	for _, c := range cases {
		err := Write(c.dev, make([]byte, c.len), c.off)
		if c.ok {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, syscall.EIO) || !errors.Is(err, c.target) {
			t.Errorf("%s: %v, want EIO and %v", c.name, err, c.target)
		}
	}
	var pe *os.PathError
	err := Write(&memDev{b: make([]byte, 4), fail: pathErr}, []byte{1}, 0)
	if !errors.As(err, &pe) || pe.Path != "/lib/web01.qcow2" {
		t.Errorf("the cause is not reachable with errors.As: %v", err)
	}
}
