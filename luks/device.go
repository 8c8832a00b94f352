package luks

import (
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// Device is the decrypted data segment of an unlocked volume.
type Device struct {
	dev      volume.Device
	off      int64 // data segment's start on dev
	size     int64
	ss       int64 // encryption sector size
	c        sectorCipher
	readOnly bool
	mu       sync.Mutex // partial-sector writes read, change and write back
}

// Open unlocks the volume on dev with the first secret that opens a
// keyslot and returns its decrypted data. It returns ErrNoKey when none
// does; readOnly gives a device that refuses writes.
func Open(dev volume.Device, h *Header, secrets [][]byte, readOnly bool) (*Device, int, error) {
	for _, s := range secrets {
		key, slot, err := h.Unlock(dev, s)
		if err == ErrNoKey {
			continue
		}
		if err != nil {
			return nil, -1, err
		}
		d, err := NewDevice(dev, h, key, readOnly)
		return d, slot, err
	}
	return nil, -1, ErrNoKey
}

// NewDevice serves the data segment of h with the volume key.
func NewDevice(dev volume.Device, h *Header, key []byte, readOnly bool) (*Device, error) {
	c, err := newCipher(h.Cipher, key)
	if err != nil {
		return nil, err
	}
	size := h.DataSize
	if size < 0 {
		size = dev.Size() - h.DataOffset
	}
	ss := int64(h.SectorSize)
	size -= size % ss
	if size < 0 || h.DataOffset%512 != 0 {
		return nil, fmt.Errorf("luks: data at %d+%d on a device of %d bytes: %w", h.DataOffset, size, dev.Size(), ErrCorrupt)
	}
	d := &Device{dev: dev, off: h.DataOffset, size: size, ss: ss, c: c, readOnly: readOnly}
	return d, nil
}

func (d *Device) Size() int64 { return d.size }

// iv is the IV of the sector at data offset off: LUKS counts 512-byte
// sectors whatever the encryption sector size (cryptsetup sets dm-crypt's
// iv_large_sectors only for BitLocker and plain mode).
func (d *Device) iv(off int64) uint64 { return uint64(off / 512) }

func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.size {
		return 0, io.EOF
	}
	want := len(p)
	if rem := d.size - off; int64(want) > rem {
		want = int(rem)
	}
	start := off - off%d.ss
	end := (off + int64(want) + d.ss - 1) / d.ss * d.ss
	buf, err := d.readSectors(start, end)
	if err != nil {
		return 0, err
	}
	n := copy(p[:want], buf[off-start:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *Device) readSectors(start, end int64) ([]byte, error) {
	buf := make([]byte, end-start)
	if _, err := d.dev.ReadAt(buf, d.off+start); err != nil && err != io.EOF {
		return nil, fmt.Errorf("luks: reading data at %d: %w", start, err)
	}
	for o := int64(0); o < int64(len(buf)); o += d.ss {
		s := buf[o : o+d.ss]
		d.c.decrypt(s, s, d.iv(start+o))
	}
	return buf, nil
}

func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly {
		return 0, fmt.Errorf("luks: volume opened read-only: %w", syscall.EROFS)
	}
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("luks: write at %d+%d beyond %d bytes: %w", off, len(p), d.size, syscall.ENOSPC)
	}
	start := off - off%d.ss
	end := (off + int64(len(p)) + d.ss - 1) / d.ss * d.ss
	var buf []byte
	if start != off || end != off+int64(len(p)) {
		d.mu.Lock()
		defer d.mu.Unlock()
		var err error
		if buf, err = d.readSectors(start, end); err != nil {
			return 0, err
		}
	} else {
		buf = make([]byte, end-start)
	}
	copy(buf[off-start:], p)
	for o := int64(0); o < int64(len(buf)); o += d.ss {
		s := buf[o : o+d.ss]
		d.c.encrypt(s, s, d.iv(start+o))
	}
	if _, err := d.dev.WriteAt(buf, d.off+start); err != nil {
		return 0, fmt.Errorf("luks: writing data at %d: %w", start, err)
	}
	return len(p), nil
}
