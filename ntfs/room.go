package ntfs

import (
	"encoding/binary"
	"errors"
)

// fit runs fn, and when r turns out to be full, moves resident data
// streams out to clusters (largest first) and tries again: the step
// ntfs-3g takes before it resorts to an attribute list.
func (v *Volume) fit(r *record, fn func() error) error {
	for {
		err := fn()
		var full *recordFullError
		if !errors.As(err, &full) || full.num != r.num {
			return err
		}
		moved, merr := v.moveOutLargest(r)
		if merr != nil {
			return merr
		}
		if !moved {
			return err
		}
	}
}

// moveOutLargest makes the largest resident $DATA of r non-resident.
func (v *Volume) moveOutLargest(r *record) (bool, error) { return v.moveOutOther(r, "\x00none") }

// moveOutOther is moveOutLargest sparing the stream named except.
func (v *Volume) moveOutOther(r *record, except string) (bool, error) {
	best, bestLen, bestName := -1, 0, ""
	for _, off := range r.attrOffsets() {
		if binary.LittleEndian.Uint32(r.buf[off:]) != atData || r.buf[off+8] != 0 || attrNameOf(r.buf[off:]) == except {
			continue
		}
		if l := len(r.residentValue(off)); l > bestLen && l > 16 {
			best, bestLen, bestName = off, l, attrNameOf(r.buf[off:])
		}
	}
	if best < 0 {
		return false, nil
	}
	d, err := v.openData(r, bestName)
	if err != nil {
		return false, err
	}
	if err := v.makeNonResident(d, d.s.dataSize); err != nil {
		return false, err
	}
	return true, v.saveData(d)
}
