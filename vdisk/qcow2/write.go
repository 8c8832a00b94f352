package qcow2

import (
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// WriteAt writes guest bytes: in place into clusters this image owns alone,
// into new clusters at the end of the file otherwise.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly != "" {
		return 0, fmt.Errorf("qcow2 %s: %s: %w", d.name, d.readOnly, vdisk.ErrReadOnly)
	}
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		return 0, fmt.Errorf("qcow2 %s: write of %d bytes at %d: %w", d.name, len(p), off, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, fmt.Errorf("qcow2 %s: write: %w", d.name, errClosed)
	}
	if err := d.prepareWrite(); err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		n, err := d.writeRun(p[done:], off+int64(done))
		if err != nil {
			return done, err
		}
		done += int(n)
	}
	return done, nil
}

// prepareWrite loads the refcounts and, as the specification requires of a
// writer that does not maintain them, clears the autoclear feature bits.
func (d *Disk) prepareWrite() error {
	if d.rc != nil {
		return nil
	}
	if err := d.loadRefcounts(); err != nil {
		return err
	}
	if d.h.IncompatibleFeatures&incDirty != 0 {
		if err := d.repairRefcounts(); err != nil {
			d.rc = nil
			return err
		}
	}
	if d.h.AutoclearFeatures != 0 {
		d.h.AutoclearFeatures = 0
		d.hdrDirty = true
	}
	return nil
}

// writeRun writes a prefix of p at guest offset off and returns its length.
func (d *Disk) writeRun(p []byte, off int64) (int64, error) {
	gc, in := off/d.cs, off%d.cs
	n := min(int64(len(p)), d.cs-in)
	e, err := d.entry(gc)
	if err != nil {
		return 0, err
	}
	k, host, err := d.classify(e)
	if err != nil {
		return 0, err
	}
	owned, err := d.ownedData(gc, e, k, host)
	if err != nil {
		return 0, err
	}
	switch {
	case owned:
		return d.writeInPlace(p, off, gc, host)
	case vdisk.IsZero(p[:n]) && (k == kZero || k == kUnalloc && d.parent == nil):
		return n, nil // already reads as zeros
	case n == d.cs && vdisk.IsZero(p[:n]) && d.h.Version >= 3:
		return n, d.replace(gc, flagZero, e, k, host)
	case n == d.cs && !(k == kZero && host != 0):
		return d.writeNew(p, gc)
	}
	return n, d.writeCOW(p[:n], in, gc, e, k, host)
}

// ownedData reports whether guest cluster gc is a data cluster referenced
// only here, which a write may overwrite in place. A clear copied flag is
// checked against the refcount, and set when the count is one.
func (d *Disk) ownedData(gc int64, e uint64, k kind, host int64) (bool, error) {
	if k != kData {
		return false, nil
	}
	if e&flagCopied != 0 {
		return true, nil
	}
	n, err := d.refcount(host / d.cs)
	if err != nil || n != 1 {
		return false, err
	}
	return true, d.setEntry(gc, e|flagCopied)
}

// writeInPlace writes p from off into the owned cluster gc at host and on
// through the following clusters that continue it on the host.
func (d *Disk) writeInPlace(p []byte, off, gc, host int64) (int64, error) {
	start := host + off%d.cs
	n := min(int64(len(p)), d.cs-off%d.cs)
	for n < int64(len(p)) {
		e, err := d.entry(gc + 1)
		if err != nil {
			return 0, err
		}
		k, next, err := d.classify(e)
		if err != nil || k != kData || e&flagCopied == 0 || next != host+d.cs {
			break
		}
		gc, host = gc+1, next
		n += min(int64(len(p))-n, d.cs)
	}
	return n, d.writeHost(p[:n], start)
}

// writeNew writes whole clusters from p, starting at guest cluster gc, into
// newly allocated contiguous host clusters: as many as follow that need
// new space.
func (d *Disk) writeNew(p []byte, gc int64) (int64, error) {
	type old struct {
		e    uint64
		k    kind
		host int64
	}
	var olds []old
	for i := int64(0); (i+1)*d.cs <= int64(len(p)); i++ {
		e, err := d.entry(gc + i)
		if err != nil {
			return 0, err
		}
		k, host, err := d.classify(e)
		if err != nil {
			return 0, err
		}
		if i > 0 && (k == kData || k == kZero && host != 0 || vdisk.IsZero(p[i*d.cs:(i+1)*d.cs])) {
			break // owned, preallocated or zero: the next call decides
		}
		olds = append(olds, old{e, k, host})
	}
	cnt := int64(len(olds))
	host, err := d.alloc(cnt)
	if err != nil {
		return 0, err
	}
	if err := d.writeHost(p[:cnt*d.cs], host); err != nil {
		return 0, err
	}
	for i, o := range olds {
		if err := d.replace(gc+int64(i), uint64(host+int64(i)*d.cs)|flagCopied, o.e, o.k, o.host); err != nil {
			return 0, err
		}
	}
	return cnt * d.cs, nil
}

// writeCOW writes q at in within guest cluster gc, filling the rest of the
// cluster from its current content: backing file, zeros or compressed data.
func (d *Disk) writeCOW(q []byte, in, gc int64, e uint64, k kind, host int64) error {
	buf := make([]byte, d.cs)
	var err error
	switch k {
	case kUnalloc:
		valid := min(d.cs, d.size-gc*d.cs)
		err = d.readParent(buf[:valid], gc*d.cs)
	case kCompressed:
		err = d.readCompressed(e, 0, buf)
	case kData:
		err = d.readHost(buf, host)
	}
	if err != nil {
		return err
	}
	copy(buf[in:], q)
	// A preallocated zero cluster this image owns is rewritten in place.
	if k == kZero && host != 0 && e&flagCopied != 0 {
		if err := d.writeHost(buf, host); err != nil {
			return err
		}
		return d.setEntry(gc, uint64(host)|flagCopied)
	}
	dst, err := d.alloc(1)
	if err != nil {
		return err
	}
	if err := d.writeHost(buf, dst); err != nil {
		return err
	}
	return d.replace(gc, uint64(dst)|flagCopied, e, k, host)
}

// replace points guest cluster gc at entry v and drops the references the
// old entry held.
func (d *Disk) replace(gc int64, v, e uint64, k kind, host int64) error {
	if err := d.setEntry(gc, v); err != nil {
		return err
	}
	switch {
	case k == kCompressed:
		first, last := d.compressedClusters(e)
		for c := first; c <= last; c++ {
			if err := d.addRef(c, -1); err != nil {
				return err
			}
		}
	case host != 0:
		return d.addRef(host/d.cs, -1)
	}
	return nil
}

// setEntry sets the L2 entry of guest cluster gc, allocating the L2 table
// when the L1 entry has none.
func (d *Disk) setEntry(gc int64, v uint64) error {
	l1i := gc / d.l2n
	l1e := d.l1.u64(l1i)
	l2off := int64(l1e & offsetMask)
	var t *table
	if l2off == 0 {
		off, err := d.alloc(1)
		if err != nil {
			return err
		}
		t = newTable(off, int(d.cs), 8)
		d.l1.setU64(l1i, uint64(off)|flagCopied)
	} else {
		var err error
		if t, err = d.l2Table(l2off); err != nil {
			return err
		}
		if l1e&flagCopied == 0 {
			n, err := d.refcount(l2off / d.cs)
			if err != nil {
				return err
			}
			switch n {
			case 0:
				return fmt.Errorf("qcow2 %s: L2 table at %#x is in use but its refcount is 0: %w", d.name, l2off, vdisk.ErrCorrupt)
			case 1:
				d.l1.setU64(l1i, l1e|flagCopied)
			default:
				if t, err = d.cowL2(l1i, t); err != nil {
					return err
				}
			}
		}
	}
	t.setU64(gc%d.l2n, v)
	d.l2.keep(t)
	return nil
}

// cowL2 gives the active L1 entry l1i its own copy of the L2 table t, which
// an internal snapshot shares. The data clusters keep their counts: each is
// now reached through the snapshot's table and through the copy, as before
// through the shared table from both L1 tables; their copied flags stay
// clear, so writing one copies it in turn.
func (d *Disk) cowL2(l1i int64, t *table) (*table, error) {
	off, err := d.alloc(1)
	if err != nil {
		return nil, err
	}
	nt := newTable(off, int(d.cs), 8)
	copy(nt.raw, t.raw)
	d.l2.keep(nt)
	d.l1.setU64(l1i, uint64(off)|flagCopied)
	return nt, d.addRef(t.off/d.cs, -1)
}
