package ntfs

import (
	"encoding/binary"
	"fmt"
)

// recExtend is the $Extend directory; $Extend\$Reparse indexes every
// reparse point of the volume in its $R view index (ntfs-3g and chkdsk
// expect an entry for each).
const recExtend = 11

// reparseDataOffset is where a $R entry's (empty) data would start:
// header 0x10 + key 12 bytes.
const reparseDataOffset = 0x1c

func reparseKey(tag uint32, ref uint64) []byte {
	k := make([]byte, 12)
	binary.LittleEndian.PutUint32(k, tag)
	binary.LittleEndian.PutUint64(k[4:], ref)
	return k
}

// collateULongs is COLLATION_NTOFS_ULONGS: keys compared as arrays of
// little-endian 32-bit numbers.
func collateULongs(a, b []byte) int {
	for i := 0; i+4 <= len(a) && i+4 <= len(b); i += 4 {
		x, y := binary.LittleEndian.Uint32(a[i:]), binary.LittleEndian.Uint32(b[i:])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return cmpInt(len(a), len(b))
}

// reparseIndex opens $Extend\$Reparse:$R for editing; nil when the
// volume has none (NTFS 1.x).
func (o *op) reparseIndex() (*dirW, error) {
	num, _, err := o.v.entryIn(recExtend, "$Reparse")
	if err != nil {
		return nil, nil
	}
	key := num | 1<<63 // keep apart from the directory editors
	if dw := o.dirs[key]; dw != nil {
		return dw, nil
	}
	r, err := o.rec(num)
	if err != nil {
		return nil, err
	}
	dw, err := o.openIndexW(r, "$R", collateULongs)
	if err != nil {
		return nil, fmt.Errorf("ntfs: $Reparse index: %w", err)
	}
	o.dirs[key] = dw
	o.mark(r)
	return dw, nil
}

// addReparseEntry records a new reparse point in $R.
func (o *op) addReparseEntry(tag uint32, ref uint64) error {
	dw, err := o.reparseIndex()
	if dw == nil || err != nil {
		return err
	}
	return dw.insert(reparseDataOffset, reparseKey(tag, ref))
}

// removeReparseEntry drops a reparse point from $R; a missing entry is
// not an error (volumes written by older tools may lack it).
func (o *op) removeReparseEntry(tag uint32, ref uint64) error {
	dw, err := o.reparseIndex()
	if dw == nil || err != nil {
		return err
	}
	if err := dw.remove(reparseKey(tag, ref), 0); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}
