package qcow2

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// Entry bits shared by L1 and L2 entries.
const (
	flagCopied     = 1 << 63 // refcount is exactly one: writable in place
	flagCompressed = 1 << 62
	flagZero       = 1 << 0             // v3 standard cluster reads as zeros
	offsetMask     = 0x00fffffffffffe00 // bits 9-55: host offset
)

// table is an on-disk table held as its big-endian bytes, with the elements
// changed since the last flush.
type table struct {
	off   int64
	raw   []byte
	elem  int              // bytes per dirty-tracked element
	dirty map[int]struct{} // changed elements
	fresh bool             // newly allocated: write it whole
}

func newTable(off int64, size, elem int) *table {
	return &table{off: off, raw: make([]byte, size), elem: elem, fresh: true}
}

func (t *table) u64(i int64) uint64 { return binary.BigEndian.Uint64(t.raw[i*8:]) }

func (t *table) setU64(i int64, v uint64) {
	binary.BigEndian.PutUint64(t.raw[i*8:], v)
	t.mark(int(i * 8 / int64(t.elem)))
}

func (t *table) mark(i int) {
	if t.fresh {
		return
	}
	if t.dirty == nil {
		t.dirty = map[int]struct{}{}
	}
	t.dirty[i] = struct{}{}
}

func (t *table) isDirty() bool { return t.fresh || len(t.dirty) > 0 }

// flush writes the changed elements, one write per run of adjacent ones.
func (t *table) flush(d *Disk) error {
	if t.fresh {
		if err := d.writeHost(t.raw, t.off); err != nil {
			return err
		}
		t.fresh = false
		return nil
	}
	idx := make([]int, 0, len(t.dirty))
	for i := range t.dirty {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for len(idx) > 0 {
		n := 1
		for n < len(idx) && idx[n] == idx[0]+n {
			n++
		}
		lo, hi := idx[0]*t.elem, (idx[0]+n)*t.elem
		if err := d.writeHost(t.raw[lo:hi], t.off+int64(lo)); err != nil {
			return err
		}
		idx = idx[n:]
	}
	t.dirty = nil
	return nil
}

// readTable reads a table of size bytes at off, which the caller has
// bounded by the file size.
func (d *Disk) readTable(off, size int64) (*table, error) {
	t := &table{off: off, raw: make([]byte, size), elem: 8}
	if err := d.readHost(t.raw, off); err != nil {
		return nil, err
	}
	return t, nil
}

// checkCluster validates a host cluster offset taken from a table.
func (d *Disk) checkCluster(what string, off int64) error {
	if off%d.cs != 0 {
		return fmt.Errorf("qcow2 %s: %s offset %#x not cluster aligned: %w", d.name, what, off, vdisk.ErrCorrupt)
	}
	if off < d.cs || off >= d.end {
		return fmt.Errorf("qcow2 %s: %s offset %#x outside the file (%d bytes): %w", d.name, what, off, d.end, vdisk.ErrCorrupt)
	}
	return nil
}

// l2Cache holds L2 tables by host offset, bounded in bytes; tables with
// unflushed changes are never evicted.
type l2Cache struct {
	mu  sync.Mutex
	m   map[int64]*table
	max int
}

const l2CacheBytes = 32 << 20

// init bounds the cache for tables (or slices) of size bytes.
func (c *l2Cache) init(size int64) {
	c.m = map[int64]*table{}
	c.max = max(16, int(l2CacheBytes/size))
}

func (c *l2Cache) get(off int64) *table {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[off]
}

// put inserts t unless another reader got there first, and returns the
// table to use.
func (c *l2Cache) put(t *table) *table {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[t.off]; ok {
		return old
	}
	if len(c.m) >= c.max {
		for off, v := range c.m {
			if !v.isDirty() {
				delete(c.m, off)
			}
			if len(c.m) < c.max/2 {
				break
			}
		}
	}
	c.m[t.off] = t
	return t
}

// keep (re)inserts a table the writer changed: it may have been evicted
// while it was clean.
func (c *l2Cache) keep(t *table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[t.off] = t
}

// dirtyTables lists the tables with unflushed changes, by offset.
func (c *l2Cache) dirtyTables() []*table {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []*table
	for _, t := range c.m {
		if t.isDirty() {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b *table) int { return int(a.off - b.off) })
	return ts
}

// l2Table returns the L2 table at host offset off, reading it on a miss
// without holding the cache lock, so readers of cached tables never wait.
func (d *Disk) l2Table(off int64) (*table, error) {
	if t := d.l2.get(off); t != nil {
		return t, nil
	}
	if err := d.checkCluster("L2 table", off); err != nil {
		return nil, err
	}
	t, err := d.readTable(off, d.cs)
	if err != nil {
		return nil, err
	}
	return d.l2.put(t), nil
}

// entry returns the L2 entry of guest cluster gc (0 when unallocated).
func (d *Disk) entry(gc int64) (uint64, error) {
	l1i := gc / d.l2n
	if l1i >= int64(len(d.l1.raw)/8) {
		return 0, nil
	}
	l2off := int64(d.l1.u64(l1i) & offsetMask)
	if l2off == 0 {
		return 0, nil
	}
	if d.readOnly != "" {
		return d.sliceEntry(l2off, gc%d.l2n)
	}
	t, err := d.l2Table(l2off)
	if err != nil {
		return 0, err
	}
	return t.u64(gc % d.l2n), nil
}

// l2SliceBytes is how much of an L2 table a read-only disk reads at a
// time (qemu's l2-cache-entry-size does the same): a 64 KiB table maps
// 4 GiB, and describing an image (ls of a library) reads a few hundred
// entries of it. A page holds 512 entries.
const l2SliceBytes = 4096

// sliceEntry is entry i of the L2 table at l2off, read a slice at a time.
// Only a disk that never writes reads so (d.readOnly set): its L2 tables
// change only by another program, which a whole-table cache would not see
// either; a writer's tables stay whole, for its dirty tracking and copies.
func (d *Disk) sliceEntry(l2off, i int64) (uint64, error) {
	size := min(int64(l2SliceBytes), d.cs)
	per := size / 8
	off := l2off + i/per*size
	t := d.l2s.get(off)
	if t == nil {
		if err := d.checkCluster("L2 table", l2off); err != nil {
			return 0, err
		}
		var err error
		if t, err = d.readTable(off, size); err != nil {
			return 0, err
		}
		t = d.l2s.put(t)
	}
	return t.u64(i % per), nil
}

// Cluster kinds an L2 entry describes.
type kind int

const (
	kUnalloc kind = iota // read from the backing file
	kZero                // reads as zeros
	kData                // standard cluster at host offset
	kCompressed
)

// classify decodes an L2 entry, validating its host offset.
func (d *Disk) classify(e uint64) (kind, int64, error) {
	if e&flagCompressed != 0 {
		return kCompressed, 0, nil
	}
	off := int64(e & offsetMask)
	if e&flagZero != 0 {
		if d.h.Version < 3 {
			return 0, 0, fmt.Errorf("qcow2 %s: zero cluster flag in a version 2 image: %w", d.name, vdisk.ErrCorrupt)
		}
		if off != 0 {
			if err := d.checkCluster("preallocated zero cluster", off); err != nil {
				return 0, 0, err
			}
		}
		return kZero, off, nil
	}
	if off == 0 {
		if e&flagCopied != 0 {
			return 0, 0, fmt.Errorf("qcow2 %s: L2 entry %#x maps host offset 0: %w", d.name, e, vdisk.ErrCorrupt)
		}
		return kUnalloc, 0, nil
	}
	if err := d.checkCluster("data cluster", off); err != nil {
		return 0, 0, err
	}
	return kData, off, nil
}
