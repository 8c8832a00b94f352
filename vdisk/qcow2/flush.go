package qcow2

import (
	"encoding/binary"
	"fmt"
)

// Flush writes the metadata changed since the last flush: refcounts first,
// then L2 and L1 entries, then the header, so that an interrupted flush
// leaves at worst leaked clusters, never a cluster in use with no count.
func (d *Disk) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("qcow2 %s: flush: %w", d.name, errClosed)
	}
	return d.flushLocked()
}

func (d *Disk) flushLocked() error {
	if d.rc == nil {
		return nil // never written
	}
	if err := d.flushRefcounts(); err != nil {
		return err
	}
	for _, t := range d.l2.dirtyTables() {
		if err := t.flush(d); err != nil {
			return err
		}
	}
	if err := d.l1.flush(d); err != nil {
		return err
	}
	return d.flushHeader()
}

// flushHeader rewrites the header fields a write may change: the refcount
// table's place and size, and the autoclear features.
func (d *Disk) flushHeader() error {
	if !d.hdrDirty {
		return nil
	}
	rt := d.rc.table
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(rt.off))
	binary.BigEndian.PutUint32(b[8:], uint32(int64(len(rt.raw))/d.cs))
	if err := d.writeHost(b[:], offRefcountTable); err != nil {
		return err
	}
	if d.h.Version >= 3 {
		binary.BigEndian.PutUint64(b[:8], d.h.IncompatibleFeatures)
		if err := d.writeHost(b[:8], offIncompatible); err != nil {
			return err
		}
		binary.BigEndian.PutUint64(b[:8], d.h.AutoclearFeatures)
		if err := d.writeHost(b[:8], offAutoclear); err != nil {
			return err
		}
	}
	d.hdrDirty = false
	return nil
}
