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
		dev := &failDev{memDev: memDev(s.build(t, make([]byte, 8<<20))), left: 1, err: cause}
		d, _, _, err := Open(dev, nil)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte(strings.Repeat("z", 1024+100))
		if n, err := d.WriteAt(data[:1024], 6<<20); err != nil || n != 1024 {
			t.Fatalf("%v: first write: %d, %v", cause, n, err)
		}
		// the second, unaligned, fails below us
		n, err := d.WriteAt(data[1024:], 6<<20+1024+50)
		if !errors.Is(err, cause) || n != 0 || !strings.Contains(err.Error(), "at 6292480") {
			t.Fatalf("%v: wrote %d, err %v", cause, n, err)
		}
		back := make([]byte, 2048)
		if _, err := d.ReadAt(back, 6<<20); err != nil {
			t.Fatal(err)
		}
		if string(back[:1024]) != string(data[:1024]) || strings.Trim(string(back[1024:]), "\x00") != "" {
			t.Errorf("%v: after a failed write the sectors read %q...", cause, back[1020:1080])
		}
	}
}
