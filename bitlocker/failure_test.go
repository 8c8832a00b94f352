package bitlocker

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// failDev fails writes after a number of them, as a full disk or a dying
// one does.
type failDev struct {
	memDev
	left int
	err  error
}

func (d *failDev) WriteAt(p []byte, off int64) (int, error) {
	if d.left == 0 {
		return 0, d.err
	}
	d.left--
	return d.memDev.WriteAt(p, off)
}

// TestWriteFailures: an I/O error or a full disk under the volume reaches
// the caller (named, with its cause), the sectors written before it stay
// readable, and the sectors after it keep their old content.
func TestWriteFailures(t *testing.T) {
	for _, cause := range []error{syscall.EIO, syscall.ENOSPC} {
		s := synth{version: 2, method: AES128CBC, fvek: make([]byte, 16), state: StateEncrypted, size: 8 << 20, encSize: 8 << 20}
		dev := &failDev{memDev: memDev(s.build(t, make([]byte, 8<<20))), left: 2, err: cause}
		d, _, _, err := Open(dev, nil)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte(strings.Repeat("z", 4*512))
		n, err := d.WriteAt(data, 6<<20)
		if !errors.Is(err, cause) || n != 2*512 || !strings.Contains(err.Error(), "sector at") {
			t.Fatalf("%v: wrote %d, err %v", cause, n, err)
		}
		back := make([]byte, len(data))
		if _, err := d.ReadAt(back, 6<<20); err != nil {
			t.Fatal(err)
		}
		if string(back[:1024]) != string(data[:1024]) || strings.Trim(string(back[1024:]), "\x00") != "" {
			t.Errorf("%v: after a failed write the sectors read %q...", cause, back[1020:1030])
		}
	}
}
