package lvm

import (
	"fmt"
	"io"

	"github.com/offvm/offvm/volume"
)

// lvDevice is a logical volume as a volume.Device: each access is split
// at segment and stripe-chunk boundaries and sent to the PVs' devices.
type lvDevice struct {
	lv     *LV
	extent int64
	segs   []mappedSeg
}

type mappedSeg struct {
	segment
	devs  []volume.Device
	bases []int64 // byte offset of the stripe's first extent on its PV
}

func (d *lvDevice) Size() int64 { return d.lv.Size }

// locate maps an LV byte offset to a device, its offset there, and how
// many bytes from there are contiguous.
func (d *lvDevice) locate(off int64) (volume.Device, int64, int64) {
	ext := off / d.extent
	for i := range d.segs {
		s := &d.segs[i]
		if ext < s.start || ext >= s.start+s.count {
			continue
		}
		rel := off - s.start*d.extent
		segEnd := s.count*d.extent - rel
		n := int64(len(s.devs))
		if n == 1 {
			return s.devs[0], s.bases[0] + rel, segEnd
		}
		chunk := rel / s.stripeSize
		in := rel % s.stripeSize
		k := chunk % n
		row := chunk / n
		return s.devs[k], s.bases[k] + row*s.stripeSize + in, min(s.stripeSize-in, segEnd)
	}
	return nil, 0, 0
}

func (d *lvDevice) ReadAt(p []byte, off int64) (int, error) {
	return d.each(p, off, func(dev volume.Device, b []byte, o int64) (int, error) {
		n, err := dev.ReadAt(b, o)
		if err == io.EOF && n == len(b) {
			err = nil
		}
		return n, err
	})
}

func (d *lvDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.lv.Size {
		return 0, fmt.Errorf("lvm: %s/%s: write at %d+%d beyond %d bytes: %w", d.lv.VG, d.lv.Name, off, len(p), d.lv.Size, io.ErrShortWrite)
	}
	return d.each(p, off, func(dev volume.Device, b []byte, o int64) (int, error) { return dev.WriteAt(b, o) })
}

func (d *lvDevice) each(p []byte, off int64, op func(volume.Device, []byte, int64) (int, error)) (int, error) {
	if off < 0 || off >= d.lv.Size {
		return 0, io.EOF
	}
	done := 0
	for done < len(p) {
		if off >= d.lv.Size {
			return done, io.EOF
		}
		dev, o, run := d.locate(off)
		if dev == nil {
			return done, fmt.Errorf("lvm: %s/%s: byte %d is in no segment: %w", d.lv.VG, d.lv.Name, off, ErrCorrupt)
		}
		n := int(min(int64(len(p)-done), run, d.lv.Size-off))
		m, err := op(dev, p[done:done+n], o)
		done += m
		off += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
