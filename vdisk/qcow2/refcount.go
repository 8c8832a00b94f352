package qcow2

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/offvm/offvm/vdisk"
)

// refcounts is the two-level refcount structure: a table of refcount
// block offsets, each block an array of refcount_bits-wide counters, one
// per host cluster.
type refcounts struct {
	bits     int
	perBlock int64 // counters per block
	table    *table
	blocks   map[int64]*table // by host offset
	maxCache int              // clean blocks beyond this many are dropped
}

const (
	maxCachedBlocks = 1024
	// maxSkip bounds the counted-but-absent clusters alloc steps over.
	maxSkip = 1 << 16
)

// loadRefcounts reads the refcount table, the first time a write needs it.
func (d *Disk) loadRefcounts() error {
	if d.rc != nil {
		return nil
	}
	h := d.h
	if h.RefcountTableClusters == 0 || int64(h.RefcountTableOffset) < d.cs {
		return fmt.Errorf("qcow2 %s: refcount table (%d clusters at %#x) overlaps the header or is empty: %w", d.name, h.RefcountTableClusters, h.RefcountTableOffset, vdisk.ErrCorrupt)
	}
	t, err := d.readTable(int64(h.RefcountTableOffset), int64(h.RefcountTableClusters)*d.cs)
	if err != nil {
		return fmt.Errorf("qcow2 %s: refcount table: %w", d.name, err)
	}
	bits := 1 << h.RefcountOrder
	d.rc = &refcounts{
		bits:     bits,
		perBlock: d.cs * 8 / int64(bits),
		table:    t,
		blocks:   map[int64]*table{},
		maxCache: maxCachedBlocks,
	}
	return nil
}

// get and set address counter i of a refcount block; sub-byte widths
// fill each byte from its least significant bit, wider ones are big-endian.
func refGet(t *table, bits int, i int64) uint64 {
	switch bits {
	case 8:
		return uint64(t.raw[i])
	case 16:
		return uint64(binary.BigEndian.Uint16(t.raw[i*2:]))
	case 32:
		return uint64(binary.BigEndian.Uint32(t.raw[i*4:]))
	case 64:
		return binary.BigEndian.Uint64(t.raw[i*8:])
	}
	bit := i * int64(bits)
	return uint64(t.raw[bit/8]>>(bit%8)) & (1<<bits - 1)
}

func refSet(t *table, bits int, i int64, v uint64) {
	switch bits {
	case 8:
		t.raw[i] = byte(v)
	case 16:
		binary.BigEndian.PutUint16(t.raw[i*2:], uint16(v))
	case 32:
		binary.BigEndian.PutUint32(t.raw[i*4:], uint32(v))
	case 64:
		binary.BigEndian.PutUint64(t.raw[i*8:], v)
	default:
		bit := i * int64(bits)
		mask := byte(1<<bits-1) << (bit % 8)
		t.raw[bit/8] = t.raw[bit/8]&^mask | byte(v)<<(bit%8)&mask
	}
	t.mark(int(i * int64(bits) / 8 / int64(t.elem)))
}

// refBlock returns the refcount block covering host cluster c; with create
// it allocates the block (and grows the table) when missing, else it
// returns nil for a cluster no block covers.
func (d *Disk) refBlock(c int64, create bool) (*table, error) {
	rc := d.rc
	ti := c / rc.perBlock
	if ti >= int64(len(rc.table.raw)/8) {
		if !create {
			return nil, nil
		}
		if err := d.growRefTable(ti); err != nil {
			return nil, err
		}
	}
	boff := int64(rc.table.u64(ti) &^ 511)
	if boff == 0 {
		if !create {
			return nil, nil
		}
		return d.newRefBlock(ti)
	}
	if b := rc.blocks[boff]; b != nil {
		return b, nil
	}
	if err := d.checkCluster("refcount block", boff); err != nil {
		return nil, err
	}
	b, err := d.readTable(boff, d.cs)
	if err != nil {
		return nil, err
	}
	b.elem = max(1, rc.bits/8)
	d.cacheRefBlock(b)
	return b, nil
}

// newRefBlock allocates the refcount block for table index ti at the end
// of the file; the block counts itself (or a later block counts it).
func (d *Disk) newRefBlock(ti int64) (*table, error) {
	rc := d.rc
	off := d.end
	d.end += d.cs
	b := newTable(off, int(d.cs), max(1, rc.bits/8))
	d.cacheRefBlock(b)
	rc.table.setU64(ti, uint64(off))
	return b, d.addRef(off/d.cs, 1)
}

func (d *Disk) cacheRefBlock(b *table) {
	rc := d.rc
	if len(rc.blocks) >= rc.maxCache {
		for off, v := range rc.blocks {
			if !v.isDirty() {
				delete(rc.blocks, off)
			}
		}
	}
	rc.blocks[b.off] = b
}

// refcount returns the count of host cluster c.
func (d *Disk) refcount(c int64) (uint64, error) {
	b, err := d.refBlock(c, false)
	if err != nil || b == nil {
		return 0, err
	}
	return refGet(b, d.rc.bits, c%d.rc.perBlock), nil
}

// addRef adds delta (+1 or -1) to the count of host cluster c.
func (d *Disk) addRef(c int64, delta int64) error {
	b, err := d.refBlock(c, delta > 0)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("qcow2 %s: freeing host cluster %#x, which no refcount block covers: %w", d.name, c*d.cs, vdisk.ErrCorrupt)
	}
	// The block stays cached while dirty; re-insert it in case an
	// allocation in between evicted it while it was clean.
	d.rc.blocks[b.off] = b
	i := c % d.rc.perBlock
	v := refGet(b, d.rc.bits, i)
	limit := uint64(1)<<d.rc.bits - 1
	if d.rc.bits == 64 {
		limit = ^uint64(0)
	}
	switch {
	case delta < 0 && v == 0:
		return fmt.Errorf("qcow2 %s: freeing host cluster %#x whose refcount is already 0: %w", d.name, c*d.cs, vdisk.ErrCorrupt)
	case delta > 0 && v == limit:
		return fmt.Errorf("qcow2 %s: refcount of host cluster %#x would overflow %d bits: %w", d.name, c*d.cs, d.rc.bits, vdisk.ErrUnsupported)
	}
	refSet(b, d.rc.bits, i, uint64(int64(v)+delta))
	return nil
}

// alloc reserves k contiguous clusters at the end of the file with a
// refcount of one each, skipping any cluster already counted (space a
// preallocating writer reserved past the end of the file).
func (d *Disk) alloc(k int64) (int64, error) {
	for skipped := int64(0); ; {
		off := d.end
		busy := int64(-1)
		for i := int64(0); i < k; i++ {
			n, err := d.refcount(off/d.cs + i)
			if err != nil {
				return 0, err
			}
			if n != 0 {
				busy = i
			}
		}
		if busy < 0 {
			d.end += k * d.cs
			for i := int64(0); i < k; i++ {
				if err := d.addRef(off/d.cs+i, 1); err != nil {
					return 0, err
				}
			}
			return off, nil
		}
		d.end = off + (busy+1)*d.cs
		if skipped += busy + 1; skipped > maxSkip {
			return 0, fmt.Errorf("qcow2 %s: refcounts claim more than %d clusters past the end of the file: %w", d.name, maxSkip, vdisk.ErrCorrupt)
		}
	}
}

// growRefTable moves the refcount table to the end of the file with room
// for index ti and for the blocks that will count the new table itself.
func (d *Disk) growRefTable(ti int64) error {
	rc := d.rc
	perCluster := d.cs / 8
	n := roundUp(ti+1+(ti+1)/2, perCluster)
	for {
		tc := n / perCluster
		last := d.end/d.cs + tc + tc/rc.perBlock + 2
		if last/rc.perBlock < n {
			break
		}
		n += perCluster
	}
	if n*8 > 1<<30 {
		return fmt.Errorf("qcow2 %s: refcount table would exceed 1 GiB: %w", d.name, vdisk.ErrUnsupported)
	}
	old := rc.table
	nt := newTable(d.end, int(n*8), 8)
	copy(nt.raw, old.raw)
	d.end += n * 8
	rc.table = nt
	d.hdrDirty = true
	for i := int64(0); i < n/perCluster; i++ {
		if err := d.addRef(nt.off/d.cs+i, 1); err != nil {
			return err
		}
	}
	for c := old.off / d.cs; c < (old.off+int64(len(old.raw)))/d.cs; c++ {
		if err := d.addRef(c, -1); err != nil {
			return err
		}
	}
	return nil
}

// flushRefcounts writes the changed counters, then the table.
func (d *Disk) flushRefcounts() error {
	rc := d.rc
	if rc == nil {
		return nil
	}
	var bs []*table
	for _, b := range rc.blocks {
		if b.isDirty() {
			bs = append(bs, b)
		}
	}
	slices.SortFunc(bs, func(a, b *table) int { return int(a.off - b.off) })
	for _, b := range bs {
		if err := b.flush(d); err != nil {
			return err
		}
	}
	return rc.table.flush(d)
}
