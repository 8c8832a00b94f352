package bitlocker

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/offvm/offvm/volume"
)

// region is a byte range of the BitLocker volume.
type region struct{ start, end int64 }

func (r region) has(off int64) bool { return off >= r.start && off < r.end }

// Device is the decrypted volume: what the file system inside sees, as
// Windows' fvevol driver shows it. The first sectors read from where
// Windows relocated them, the metadata regions read as zeros, and sectors
// past the encrypted part of a volume under conversion read as they are.
type Device struct {
	under volume.Device
	c     sectorCipher
	ss    int64
	size  int64
	meta  *Metadata
	vista bool
	// headerLen is the length of the relocated start (0 on Vista).
	headerLen int64
	reserved  []region
	// readOnly says why writes are refused ("" when they are not).
	readOnly string
	wmu      sync.Mutex
}

// ErrReadOnly is returned by writes to a volume offvm cannot write safely.
var ErrReadOnly = errors.New("bitlocker volume is read-only")

// NewDevice serves the decrypted volume on under with the unwrapped key.
func NewDevice(under volume.Device, h Header, m *Metadata, k *VolumeKey) (*Device, error) {
	c, err := newSectorCipher(k.Method, k.FVEK, h.SectorSize)
	if err != nil {
		return nil, err
	}
	d := &Device{under: under, c: c, ss: int64(h.SectorSize), size: under.Size(), meta: m, vista: h.Vista}
	for _, off := range m.Offsets {
		d.reserved = append(d.reserved, region{int64(off), int64(off) + h.regionSize()})
	}
	if !h.Vista {
		d.headerLen = int64(m.HeaderSectors) * d.ss
		hidden := int64(m.HeaderBytes)
		if hidden == 0 {
			hidden = d.headerLen
		}
		d.reserved = append(d.reserved, region{int64(m.HeaderOffset), int64(m.HeaderOffset) + hidden})
		if m.CurrentState == StateSwitching && m.ConvertSize > 0 {
			// the slice being converted right now reads as zeros
			d.reserved = append(d.reserved, region{int64(m.EncryptedSize), int64(m.EncryptedSize) + int64(m.ConvertSize)})
		}
	}
	d.readOnly = writeRefusal(h, m, k)
	if enc := int64(m.EncryptedSize); enc > d.size && m.CurrentState == StateEncrypted {
		// a volume cut short (or a partition shrunk under it): show all
		// of it, zeros past the end, and never write
		d.size = enc
		if d.readOnly == "" {
			d.readOnly = "the BitLocker volume is larger than its partition"
		}
	}
	return d, nil
}

// writeRefusal says why offvm will not write this volume, "" when it will.
func writeRefusal(h Header, m *Metadata, k *VolumeKey) string {
	switch {
	case h.Vista || m.Version != 2:
		return "BitLocker metadata version 1 (Vista) is read-only in offvm"
	case h.EOW:
		return "BitLocker encrypt-on-write state (used space only, being converted) is read-only in offvm"
	case m.CurrentState != StateEncrypted || m.NextState != StateEncrypted:
		return fmt.Sprintf("BitLocker conversion in progress (state %d to %d): read-only until Windows finishes it", m.CurrentState, m.NextState)
	case m.EncryptedSize == 0:
		return "BitLocker volume reports no encrypted size"
	}
	return ""
}

// Size is the volume's size.
func (d *Device) Size() int64 { return d.size }

// ReadOnlyReason says why writes are refused, "" when they are not.
func (d *Device) ReadOnlyReason() string { return d.readOnly }

// ReadAt reads decrypted bytes.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bitlocker: negative offset %d", off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > d.size-off {
		p = p[:d.size-off]
	}
	n := 0
	for n < len(p) {
		// whole sectors, in runs of at most readRun bytes, each run read
		// from under in one call
		v := off + int64(n)
		base := v - v%d.ss
		end := min(base+readRun, (off+int64(len(p))+d.ss-1)/d.ss*d.ss)
		buf := make([]byte, end-base)
		if err := d.readRun(buf, base); err != nil {
			return n, err
		}
		n += copy(p[n:], buf[v-base:])
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// readRun is the most ReadAt decrypts from one read of the partition.
const readRun = 1 << 20

// readRun decrypts the whole sectors of buf, at volume offset v. Sectors
// that need more than decryption in place (reserved, relocated, Vista's
// clear ones) go through readSector.
func (d *Device) readRun(buf []byte, v int64) error {
	if err := d.readUnder(buf, v); err != nil {
		return err
	}
	for i := int64(0); i < int64(len(buf)); i += d.ss {
		sv, sec := v+i, buf[i:i+d.ss]
		switch {
		case d.special(sv):
			if err := d.readSector(sec, sv); err != nil {
				return err
			}
		case sv >= d.under.Size():
			// past a partition cut short: zeros, as dislocker shows
		case uint64(sv) < d.meta.EncryptedSize:
			d.c.decrypt(sec, uint64(sv))
		}
	}
	return nil
}

// special says whether the sector at v is anything but an encrypted (or
// not yet encrypted) sector in place.
func (d *Device) special(v int64) bool {
	return v < d.headerLen || d.isReserved(v) || (d.vista && (v < 16*d.ss || v+d.ss == int64(d.meta.EncryptedSize)))
}

// readSector reads the decrypted sector at volume offset v.
func (d *Device) readSector(sec []byte, v int64) error {
	phys := v
	switch {
	case d.isReserved(v):
		clear(sec)
		return nil
	case d.vista && (v < 16*d.ss || v+d.ss == int64(d.meta.EncryptedSize)):
		// Vista leaves the boot sectors (and the backup boot sector)
		// in clear, with its own signature in the boot sector
		if err := d.readUnder(sec, v); err != nil {
			return err
		}
		if v == 0 || v+d.ss == int64(d.meta.EncryptedSize) {
			copy(sec[3:11], "NTFS    ")
			putLE64(sec[0x38:], d.meta.HeaderOffset)
		}
		return nil
	case v < d.headerLen:
		phys = int64(d.meta.HeaderOffset) + v
	}
	if err := d.readUnder(sec, phys); err != nil {
		return err
	}
	if phys >= d.under.Size() {
		return nil // past a partition cut short: zeros, as dislocker shows
	}
	if uint64(phys) < d.meta.EncryptedSize {
		d.c.decrypt(sec, uint64(phys))
	}
	return nil
}

func (d *Device) isReserved(v int64) bool {
	for _, r := range d.reserved {
		if r.has(v) {
			return true
		}
	}
	return false
}

// readUnder reads a raw sector; past the partition's end it is zeros.
func (d *Device) readUnder(sec []byte, phys int64) error {
	n, err := d.under.ReadAt(sec, phys)
	if err != nil && !(errors.Is(err, io.EOF) && phys+int64(n) >= d.under.Size()) {
		return fmt.Errorf("bitlocker: reading sector at %d: %w", phys, err)
	}
	clear(sec[n:])
	return nil
}

// WriteAt encrypts p as Windows would and writes it; partial sectors are
// read, merged and rewritten. Writes into the metadata regions, which the
// file system never owns, are refused whole.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly != "" {
		return 0, fmt.Errorf("%w: %s", ErrReadOnly, d.readOnly)
	}
	stop := off + int64(len(p))
	if off < 0 || stop > d.size {
		return 0, fmt.Errorf("bitlocker: write of %d bytes at %d past the volume's %d", len(p), off, d.size)
	}
	base, end := off-off%d.ss, (stop+d.ss-1)/d.ss*d.ss
	for v := base; v < end; v += d.ss {
		if d.isReserved(v) {
			return 0, fmt.Errorf("bitlocker: write at %d falls in the BitLocker metadata", v)
		}
	}
	d.wmu.Lock() // a partial sector is read, merged and written whole
	defer d.wmu.Unlock()
	n := 0
	for pos := base; pos < end; {
		runEnd := min(pos+readRun, end)
		buf := make([]byte, runEnd-pos)
		if pos < off {
			if err := d.readSector(buf[:d.ss], pos); err != nil {
				return n, err
			}
		}
		if runEnd > stop {
			if err := d.readSector(buf[len(buf)-int(d.ss):], runEnd-d.ss); err != nil {
				return n, err
			}
		}
		from := max(off, pos)
		copy(buf[from-pos:], p[from-off:min(stop, runEnd)-off])
		if err := d.writeRun(buf, pos); err != nil {
			return n, err
		}
		n = int(min(stop, runEnd) - off)
		pos = runEnd
	}
	return n, nil
}

// writeRun encrypts whole sectors at volume offset v and writes them: the
// relocated first sectors one by one where Windows keeps them, the rest
// in one write.
func (d *Device) writeRun(buf []byte, v int64) error {
	for len(buf) > 0 && v < d.headerLen {
		if err := d.writeAt(append([]byte(nil), buf[:d.ss]...), v, int64(d.meta.HeaderOffset)+v); err != nil {
			return err
		}
		buf, v = buf[d.ss:], v+d.ss
	}
	if len(buf) == 0 {
		return nil
	}
	return d.writeAt(append([]byte(nil), buf...), v, v)
}

// writeAt encrypts the sectors of enc in place as sectors at phys (where
// the volume is encrypted: a sector past the encrypted size stays clear,
// as reads take it) and writes them there.
func (d *Device) writeAt(enc []byte, v, phys int64) error {
	for i := int64(0); i < int64(len(enc)); i += d.ss {
		if uint64(phys+i) < d.meta.EncryptedSize {
			d.c.encrypt(enc[i:i+d.ss], uint64(phys+i))
		}
	}
	if _, err := d.under.WriteAt(enc, phys); err != nil {
		return fmt.Errorf("bitlocker: writing %d bytes of the volume at %d: %w", len(enc), v, err)
	}
	return nil
}

func putLE64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}
