package hive

import (
	"encoding/binary"
	"fmt"
)

// Value types.
const (
	RegNone                     = 0
	RegSz                       = 1
	RegExpandSz                 = 2
	RegBinary                   = 3
	RegDword                    = 4
	RegDwordBigEndian           = 5
	RegLink                     = 6
	RegMultiSz                  = 7
	RegResourceList             = 8
	RegFullResourceDescriptor   = 9
	RegResourceRequirementsList = 10
	RegQword                    = 11
)

const (
	valueCompName = 0x0001     // the value name is Latin-1
	dataInline    = 0x80000000 // data of 4 bytes or less lives in the offset field
	bigDataChunk  = 16344      // the largest segment of a db record
	maxValueData  = 1 << 30    // a sanity bound on declared data sizes
)

// Value is one named value of a key. The default value has the name "".
type Value struct {
	h    *Hive
	name string
	typ  uint32
	cell uint32 // vk cell, or noCell for a value set here
	size uint32 // the raw data size field
	off  uint32 // the raw data offset field
	data []byte // the data of a value set here
}

// Name is the value's name ("" for the default value).
func (v *Value) Name() string { return v.name }

// Type is the value's type (RegSz, ..., or any other number).
func (v *Value) Type() uint32 { return v.typ }

// Data returns a copy of the value's data.
func (v *Value) Data() ([]byte, error) {
	if v.cell == noCell { // set here: data never changes after creation
		return append([]byte(nil), v.data...), nil
	}
	v.h.mu.RLock()
	defer v.h.mu.RUnlock()
	return v.dataLocked()
}

// dataLocked is Data for a caller holding h.mu.
func (v *Value) dataLocked() ([]byte, error) {
	if v.cell == noCell {
		return append([]byte(nil), v.data...), nil
	}
	b, err := v.h.valueData(v.size, v.off)
	if err != nil {
		return nil, fmt.Errorf("data of value %q: %w", v.name, err)
	}
	return b, nil
}

// parseValue decodes the vk cell at off.
func (h *Hive) parseValue(off uint32) (*Value, error) {
	c, _, err := h.sigCell(off, "vk")
	if err != nil {
		return nil, err
	}
	if len(c) < 20 {
		return nil, fmt.Errorf("value cell at 0x%x too short: %w", off, ErrCorrupt)
	}
	le := binary.LittleEndian
	n := int(le.Uint16(c[2:]))
	if 20+n > len(c) {
		return nil, fmt.Errorf("value cell at 0x%x: name of %d bytes overruns the cell: %w", off, n, ErrCorrupt)
	}
	v := &Value{h: h, cell: off}
	v.size = le.Uint32(c[4:])
	v.off = le.Uint32(c[8:])
	v.typ = le.Uint32(c[12:])
	flags := le.Uint16(c[16:])
	v.name = decodeName(c[20:20+n], flags&valueCompName != 0)
	return v, nil
}

// valueData reads the data a vk's size and offset fields describe: inline,
// one cell, or a db list of segments.
func (h *Hive) valueData(size, off uint32) ([]byte, error) {
	if size&dataInline != 0 {
		n := size &^ dataInline
		if n > 4 {
			n = 4 // Windows never writes more; the field only holds 4
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], off)
		return append([]byte(nil), b[:n]...), nil
	}
	if size == 0 {
		return []byte{}, nil
	}
	if size > maxValueData || size > h.limit {
		return nil, fmt.Errorf("declared size %d exceeds the hive: %w", size, ErrCorrupt)
	}
	c, err := h.cell(off)
	if err != nil {
		return nil, err
	}
	if size > bigDataChunk && h.bb.minor >= 4 && len(c) >= 8 && string(c[:2]) == "db" {
		return h.bigData(c, size, off)
	}
	if int(size) > len(c) {
		return nil, fmt.Errorf("data of %d bytes overruns its %d-byte cell at 0x%x: %w", size, len(c), off, ErrCorrupt)
	}
	return append([]byte(nil), c[:size]...), nil
}

// bigData joins the segments of a db record.
func (h *Hive) bigData(c []byte, size, off uint32) ([]byte, error) {
	le := binary.LittleEndian
	n := int(le.Uint16(c[2:]))
	list, err := h.cell(le.Uint32(c[4:]))
	if err != nil {
		return nil, fmt.Errorf("big data at 0x%x: %w", off, err)
	}
	if n*4 > len(list) {
		return nil, fmt.Errorf("big data at 0x%x claims %d segments, more than its list holds: %w", off, n, ErrCorrupt)
	}
	out := make([]byte, 0, size)
	for i := 0; i < n && uint32(len(out)) < size; i++ {
		seg, err := h.cell(le.Uint32(list[4*i:]))
		if err != nil {
			return nil, fmt.Errorf("big data at 0x%x, segment %d: %w", off, i, err)
		}
		take := min(int(size)-len(out), bigDataChunk, len(seg))
		out = append(out, seg[:take]...)
	}
	if uint32(len(out)) != size {
		return nil, fmt.Errorf("big data at 0x%x holds %d of its %d bytes: %w", off, len(out), size, ErrCorrupt)
	}
	return out, nil
}

// Values returns the key's values in the order of the hive's list (the
// slice is the key's own: do not modify it).
func (k *Key) Values() ([]*Value, error) {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.values()
}

// values is Values for a caller holding h.mu; decoding is under h.dec.
func (k *Key) values() ([]*Value, error) {
	if k.deleted {
		return nil, fmt.Errorf("key %q was deleted: %w", k.name, ErrNotFound)
	}
	if k.valsLoaded.Load() {
		return k.vals, nil
	}
	k.h.dec.Lock()
	defer k.h.dec.Unlock()
	if !k.valsLoaded.Load() {
		vals, err := k.readValues()
		if err != nil {
			return nil, err
		}
		k.vals = vals
		k.valsLoaded.Store(true)
	}
	return k.vals, nil
}

func (k *Key) readValues() ([]*Value, error) {
	if k.nval == 0 || k.cell == noCell {
		return nil, nil
	}
	c, err := k.h.cell(k.valList)
	if err != nil {
		return nil, fmt.Errorf("values of %q: %w", k.Path(), err)
	}
	if uint64(k.nval)*4 > uint64(len(c)) {
		return nil, fmt.Errorf("values of %q: %d values claimed, the list cell holds %d: %w", k.Path(), k.nval, len(c)/4, ErrCorrupt)
	}
	vals := make([]*Value, 0, k.nval)
	for i := uint32(0); i < k.nval; i++ {
		v, err := k.h.parseValue(binary.LittleEndian.Uint32(c[4*i:]))
		if err != nil {
			return nil, fmt.Errorf("values of %q: %w", k.Path(), err)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// Value finds a value by name, case-insensitively ("" is the default).
func (k *Key) Value(name string) (*Value, error) {
	k.h.mu.RLock()
	defer k.h.mu.RUnlock()
	return k.value(name)
}

func (k *Key) value(name string) (*Value, error) {
	vals, err := k.values()
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if sameName(v.name, name) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("key %q has no value %q: %w", k.Path(), name, ErrNotFound)
}

// ID is a number for the value unique in its hive (among keys too) and
// stable while the value is not set again (its vk cell's offset), or NoID.
func (v *Value) ID() uint32 { return v.cell }
