package vhdx

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf16"

	"github.com/offvm/offvm/vdisk"
)

const (
	metadataTableSize = 64 * kib
	maxMetadataItems  = 2047
	maxVirtualSize    = 64 << 40 // [MS-VHDX] 2.6.2.2: at most 64 TiB

	paramLeaveBlocksAllocated = 1 << 0
	paramHasParent            = 1 << 1
)

var (
	fileParametersGUID    = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	virtualDiskSizeGUID   = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	page83DataGUID        = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	logicalSectorGUID     = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	physicalSectorGUID    = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	parentLocatorGUID     = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
	vhdxParentLocatorType = mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
)

// metadata holds the items of the metadata region ([MS-VHDX] 2.6).
type metadata struct {
	blockSize      uint32
	leaveAllocated bool
	hasParent      bool
	virtualSize    int64
	logicalSector  uint32
	physicalSector uint32
	page83         GUID
	parentLocator  map[string]string // nil unless hasParent
}

type metadataEntry struct {
	offset, length uint32
	required       bool
}

func readMetadata(f vdisk.File, r region) (*metadata, error) {
	name := f.Name()
	if r.length < metadataTableSize {
		return nil, fmt.Errorf("vhdx %s: metadata region of %d bytes is smaller than its table: %w", name, r.length, vdisk.ErrCorrupt)
	}
	tab := make([]byte, metadataTableSize)
	if _, err := f.ReadAt(tab, r.offset); err != nil {
		return nil, fmt.Errorf("vhdx %s: reading metadata table: %w", name, err)
	}
	if string(tab[:8]) != "metadata" {
		return nil, fmt.Errorf("vhdx %s: metadata table has no \"metadata\" signature: %w", name, vdisk.ErrCorrupt)
	}
	count := int(binary.LittleEndian.Uint16(tab[10:]))
	if count > maxMetadataItems {
		return nil, fmt.Errorf("vhdx %s: metadata table has %d entries (at most %d): %w", name, count, maxMetadataItems, vdisk.ErrCorrupt)
	}
	m := &metadata{}
	items := map[GUID]metadataEntry{}
	for i := range count {
		e := tab[32+32*i : 64+32*i]
		var id GUID
		copy(id[:], e)
		me := metadataEntry{binary.LittleEndian.Uint32(e[16:]), binary.LittleEndian.Uint32(e[20:]), binary.LittleEndian.Uint32(e[24:])&4 != 0}
		if me.length != 0 && (me.offset < metadataTableSize || int64(me.offset)+int64(me.length) > r.length) {
			return nil, fmt.Errorf("vhdx %s: metadata item %s at %d+%d lies outside its region: %w", name, id, me.offset, me.length, vdisk.ErrCorrupt)
		}
		if !knownItem(id) && me.required {
			return nil, fmt.Errorf("vhdx %s: required metadata item %s is unknown: %w", name, id, vdisk.ErrUnsupported)
		}
		items[id] = me
	}
	item := func(id GUID, what string, size int) ([]byte, error) {
		me, ok := items[id]
		if !ok {
			return nil, fmt.Errorf("vhdx %s: metadata item %q missing: %w", name, what, vdisk.ErrCorrupt)
		}
		if size > 0 && int(me.length) < size {
			return nil, fmt.Errorf("vhdx %s: metadata item %q is %d bytes, want %d: %w", name, what, me.length, size, vdisk.ErrCorrupt)
		}
		b := make([]byte, me.length)
		if _, err := f.ReadAt(b, r.offset+int64(me.offset)); err != nil && err != io.EOF {
			return nil, fmt.Errorf("vhdx %s: reading metadata item %q: %w", name, what, err)
		}
		return b, nil
	}
	if err := m.decodeItems(name, item); err != nil {
		return nil, err
	}
	if m.hasParent {
		b, err := item(parentLocatorGUID, "parent locator", 20)
		if err != nil {
			return nil, err
		}
		if m.parentLocator, err = parseParentLocator(name, b); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func knownItem(id GUID) bool {
	switch id {
	case fileParametersGUID, virtualDiskSizeGUID, page83DataGUID, logicalSectorGUID, physicalSectorGUID, parentLocatorGUID:
		return true
	}
	return false
}

func (m *metadata) decodeItems(name string, item func(GUID, string, int) ([]byte, error)) error {
	b, err := item(fileParametersGUID, "file parameters", 8)
	if err != nil {
		return err
	}
	m.blockSize = binary.LittleEndian.Uint32(b)
	flags := binary.LittleEndian.Uint32(b[4:])
	m.leaveAllocated, m.hasParent = flags&paramLeaveBlocksAllocated != 0, flags&paramHasParent != 0
	if b, err = item(virtualDiskSizeGUID, "virtual disk size", 8); err != nil {
		return err
	}
	vs := binary.LittleEndian.Uint64(b)
	if b, err = item(logicalSectorGUID, "logical sector size", 4); err != nil {
		return err
	}
	m.logicalSector = binary.LittleEndian.Uint32(b)
	if b, err = item(physicalSectorGUID, "physical sector size", 4); err != nil {
		return err
	}
	m.physicalSector = binary.LittleEndian.Uint32(b)
	if b, err = item(page83DataGUID, "page 83 data", 16); err != nil {
		return err
	}
	copy(m.page83[:], b)
	bs := m.blockSize
	switch {
	case bs < mib || bs > 256*mib || bs&(bs-1) != 0:
		return fmt.Errorf("vhdx %s: block size %d is not a power of two between 1 and 256 MiB: %w", name, bs, vdisk.ErrCorrupt)
	case m.logicalSector != 512 && m.logicalSector != 4096:
		return fmt.Errorf("vhdx %s: logical sector size %d (want 512 or 4096): %w", name, m.logicalSector, vdisk.ErrCorrupt)
	case m.physicalSector != 512 && m.physicalSector != 4096:
		return fmt.Errorf("vhdx %s: physical sector size %d (want 512 or 4096): %w", name, m.physicalSector, vdisk.ErrCorrupt)
	case vs == 0 || vs > maxVirtualSize || vs%uint64(m.logicalSector) != 0:
		return fmt.Errorf("vhdx %s: virtual disk size %d is zero, above 64 TiB or not a multiple of the sector size: %w", name, vs, vdisk.ErrCorrupt)
	}
	m.virtualSize = int64(vs)
	return nil
}

// parseParentLocator decodes the key/value pairs of a VHDX parent locator
// ([MS-VHDX] 2.6.2.6); keys and values are UTF-16LE.
func parseParentLocator(name string, b []byte) (map[string]string, error) {
	var typ GUID
	copy(typ[:], b)
	if typ != vhdxParentLocatorType {
		return nil, fmt.Errorf("vhdx %s: parent locator type %s is not the VHDX one: %w", name, typ, vdisk.ErrUnsupported)
	}
	count := int(binary.LittleEndian.Uint16(b[18:]))
	if 20+12*count > len(b) {
		return nil, fmt.Errorf("vhdx %s: parent locator claims %d entries in %d bytes: %w", name, count, len(b), vdisk.ErrCorrupt)
	}
	kv := make(map[string]string, count)
	for i := range count {
		e := b[20+12*i:]
		ko, vo := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
		kl, vl := binary.LittleEndian.Uint16(e[8:]), binary.LittleEndian.Uint16(e[10:])
		k, ok1 := utf16At(b, ko, kl)
		v, ok2 := utf16At(b, vo, vl)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("vhdx %s: parent locator entry %d points outside the locator: %w", name, i, vdisk.ErrCorrupt)
		}
		kv[k] = v
	}
	return kv, nil
}

func utf16At(b []byte, off uint32, n uint16) (string, bool) {
	if int64(off)+int64(n) > int64(len(b)) || n%2 != 0 {
		return "", false
	}
	u := make([]uint16, n/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[int(off)+2*i:])
	}
	return string(utf16.Decode(u)), true
}
