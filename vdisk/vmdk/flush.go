package vmdk

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Flush writes the grain table and directory entries changed since the
// last Flush, in both the primary and the redundant copies, then gives the
// descriptor a new content ID once, on the first flush after a write. Its cost
// follows the entries changed, not the disk size.
func (d *Disk) Flush() error {
	if d.readOnly != "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.extents {
		if e.sp != nil {
			if err := e.sp.flush(); err != nil {
				return err
			}
		}
	}
	return d.flushCID()
}

func (s *sparse) flush() error {
	keys := make([]uint32, 0, len(s.gtDirty))
	for k := range s.gtDirty {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, gdi := range keys {
		sp := s.gtDirty[gdi]
		gt := s.gts[gdi] // dirty tables are never evicted
		if err := s.writeEntries(gt[sp.lo:sp.hi], int64(s.gd[gdi])*sector+int64(sp.lo)*4); err != nil {
			return err
		}
		if s.rgd != nil && s.rgd[gdi] != 0 {
			if err := s.writeEntries(gt[sp.lo:sp.hi], int64(s.rgd[gdi])*sector+int64(sp.lo)*4); err != nil {
				return err
			}
		}
		s.mu.Lock()
		delete(s.gtDirty, gdi)
		s.mu.Unlock()
	}
	if sp := s.gdDirty; !sp.empty() {
		if err := s.writeEntries(s.gd[sp.lo:sp.hi], int64(s.hdr.GDOffset)*sector+int64(sp.lo)*4); err != nil {
			return err
		}
		if s.rgd != nil {
			if err := s.writeEntries(s.rgd[sp.lo:sp.hi], int64(s.hdr.RGDOffset)*sector+int64(sp.lo)*4); err != nil {
				return err
			}
		}
		s.gdDirty = span{}
	}
	return nil
}

func (s *sparse) writeEntries(v []uint32, off int64) error {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[i*4:], x)
	}
	if _, err := s.f.WriteAt(buf, off); err != nil {
		return fmt.Errorf("vmdk %s: writing grain tables at %d: %w", s.f.Name(), off, err)
	}
	return nil
}

// flushCID gives a written disk a new content ID, as VMware and qemu do,
// so that children made against the old content no longer trust it. The
// value is rewritten in place with as many digits as the old one (qemu
// writes no leading zeros), so nothing else in the descriptor moves.
func (d *Disk) flushCID() error {
	if !d.cidDirty || d.cidDone || d.desc == nil || !d.desc.hasCID {
		return nil
	}
	width := d.desc.cidLen
	limit := uint64(1) << (4 * min(width, 8))
	cid := d.desc.cid
	for cid == d.desc.cid || cid == noParentCID {
		cid = uint32(rand.Uint64N(limit))
	}
	off := d.descAt + int64(d.desc.cidAt)
	if _, err := d.f.WriteAt(fmt.Appendf(nil, "%0*x", width, cid), off); err != nil {
		return fmt.Errorf("vmdk %s: writing the new content ID: %w", d.name, err)
	}
	d.desc.cid, d.cidDone = cid, true
	return nil
}
