package vmdk

import (
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// WriteAt writes the virtual disk: in place into allocated grains and flat
// extents, into new grains appended to the extent file otherwise. Table
// updates wait in memory for Flush.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly != "" {
		return 0, fmt.Errorf("vmdk %s: %s: %w", d.name, d.readOnly, vdisk.ErrReadOnly)
	}
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		return 0, fmt.Errorf("vmdk %s: write of %d bytes at %d: %w", d.name, len(p), off, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cidDirty = d.cidDirty || len(p) > 0
	if err := d.eachExtent(p, off, d.writeExtent); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (d *Disk) writeExtent(e *extent, p []byte, pos int64) error {
	switch {
	case e.line.kind == "ZERO":
		return fmt.Errorf("vmdk %s: writing a ZERO extent: %w", d.name, vdisk.ErrUnsupported)
	case e.sp == nil:
		if _, err := e.f.WriteAt(p, e.flatOff+pos); err != nil {
			return fmt.Errorf("vmdk %s: writing extent %s: %w", d.name, e.f.Name(), err)
		}
		return nil
	}
	return d.writeSparse(e, p, pos)
}

func (d *Disk) writeSparse(e *extent, p []byte, pos int64) error {
	s := e.sp
	for len(p) > 0 {
		r, err := d.mapRun(s, pos, int64(len(p)))
		if err != nil {
			return err
		}
		switch r.kind {
		case runData:
			err = s.writeInPlace(p[:r.n], r.host)
		case runCompressed:
			err = fmt.Errorf("vmdk %s: compressed grains: %w", s.f.Name(), vdisk.ErrReadOnly)
		default:
			// One grain at a time: each gets its own grain-sized buffer.
			r.n = min(r.n, s.grainBytes-pos%s.grainBytes)
			err = d.writeNewGrain(e, r, p[:r.n], pos)
		}
		if err != nil {
			return err
		}
		p, pos = p[r.n:], pos+r.n
	}
	return nil
}

// writeInPlace overwrites allocated grains, refusing grains that a corrupt
// table places over the extent's own metadata.
func (s *sparse) writeInPlace(p []byte, host int64) error {
	if host < s.metaEnd {
		return fmt.Errorf("vmdk %s: grain at byte %d lies in the metadata area (first %d sectors): %w", s.f.Name(), host, s.hdr.OverHead, vdisk.ErrCorrupt)
	}
	if _, err := s.f.WriteAt(p, host); err != nil {
		return fmt.Errorf("vmdk %s: write at %d: %w", s.f.Name(), host, err)
	}
	s.grow(host + int64(len(p)))
	return nil
}

// writeNewGrain writes into a grain that has no data of its own: the rest
// of the grain keeps what it read before (the parent's bytes or zeros).
func (d *Disk) writeNewGrain(e *extent, r run, p []byte, pos int64) error {
	s := e.sp
	in := pos % s.grainBytes
	if r.kind == runZero && vdisk.IsZero(p) {
		return nil // already reads as zeros
	}
	if s.zeroGrain && int64(len(p)) == s.grainBytes && vdisk.IsZero(p) {
		return s.setGTE(r.gi, gteZeroed) // hides the parent without data
	}
	grain := make([]byte, s.grainBytes)
	if r.kind == runParent {
		if err := d.readParent(grain, e.start+r.gi*s.grainBytes); err != nil {
			return err
		}
	}
	copy(grain[in:], p)
	return s.allocGrain(r.gi, grain)
}
