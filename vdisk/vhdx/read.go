package vhdx

import (
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

type runKind int

const (
	runZero   runKind = iota
	runFile           // from the host file at host
	runParent         // from the parent at virtual offset host
)

// run is a stretch of the caller's buffer p[pos:pos+n] served one way.
type run struct {
	kind      runKind
	host, pos int64
	n         int64
}

// ReadAt reads the virtual disk. Unallocated blocks read as zeros, or as
// the parent's data in a differencing image.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	size := d.geo.virtualSize
	if off < 0 {
		return 0, fmt.Errorf("vhdx %s: read at %d: %w", d.f.Name(), off, vdisk.ErrOutOfRange)
	}
	if off >= size {
		return 0, io.EOF
	}
	short := int64(len(p)) > size-off
	if short {
		p = p[:size-off]
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, fmt.Errorf("vhdx %s: read after close", d.f.Name())
	}
	if err := d.readLocked(p, off); err != nil {
		return 0, err
	}
	if short {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readLocked fills p from off, merging neighbouring pieces into runs so
// that contiguous blocks cost one host read. Call with d.mu held.
func (d *Disk) readLocked(p []byte, off int64) error {
	var pend run
	have := false
	emit := func(r run) error {
		if have && pend.kind == r.kind && pend.pos+pend.n == r.pos && (r.kind == runZero || pend.host+pend.n == r.host) {
			pend.n += r.n
			return nil
		}
		if have {
			if err := d.doRun(p, pend); err != nil {
				return err
			}
		}
		pend, have = r, true
		return nil
	}
	bs := d.geo.blockSize
	for pos := int64(0); pos < int64(len(p)); {
		v := off + pos
		b, within := v/bs, v%bs
		n := min(bs-within, int64(len(p))-pos)
		if err := d.blockRuns(b, within, n, pos, emit); err != nil {
			return err
		}
		pos += n
	}
	if have {
		return d.doRun(p, pend)
	}
	return nil
}

// blockRuns describes how to read n bytes at within of block b.
func (d *Disk) blockRuns(b, within, n, pos int64, emit func(run) error) error {
	e := d.bat[d.geo.payloadIndex(b)]
	switch e.state() {
	case stateFullyPresent:
		return emit(run{runFile, e.offset() + within, pos, n})
	case statePartiallyPresent:
		return d.bitmapRuns(b, e, within, n, pos, emit)
	case stateZero:
		return emit(run{runZero, 0, pos, n})
	}
	// Not present, undefined or unmapped: the parent's, else zeros.
	if d.parent != nil {
		return emit(run{runParent, b*d.geo.blockSize + within, pos, n})
	}
	return emit(run{runZero, 0, pos, n})
}

// bitmapRuns splits a partially present block by its sector bitmap: a set
// bit means the sector is in this file, a clear one that it is the
// parent's.
func (d *Disk) bitmapRuns(b int64, e batEntry, within, n, pos int64, emit func(run) error) error {
	ss := d.geo.sectorSize
	first, last := within/ss, (within+n-1)/ss
	bits, base, err := d.readBitmap(b, first, last)
	if err != nil {
		return err
	}
	for s := first; s <= last; s++ {
		lo, hi := max(s*ss, within), min((s+1)*ss, within+n)
		bit := (s - first) + base
		r := run{runParent, b*d.geo.blockSize + lo, pos + lo - within, hi - lo}
		if bits[bit/8]>>(bit%8)&1 != 0 {
			r.kind, r.host = runFile, e.offset()+lo
		}
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// readBitmap reads the bitmap bytes covering sectors first..last of block
// b; bit (s-first)+base of the result belongs to sector s.
func (d *Disk) readBitmap(b, first, last int64) ([]byte, int64, error) {
	sb := d.bat[d.geo.bitmapIndex(b)]
	if sb.state() != sbStatePresent {
		return nil, 0, fmt.Errorf("vhdx %s: block %d is partially present but its sector bitmap is not: %w", d.f.Name(), b, vdisk.ErrCorrupt)
	}
	start := (b%d.geo.chunkRatio)*(d.geo.blockSize/d.geo.sectorSize) + first
	lo, hi := start/8, (start+last-first)/8+1
	bits := make([]byte, hi-lo)
	if _, err := d.f.ReadAt(bits, sb.offset()+lo); err != nil && err != io.EOF {
		return nil, 0, fmt.Errorf("vhdx %s: reading sector bitmap of block %d: %w", d.f.Name(), b, err)
	}
	return bits, start % 8, nil
}

func (d *Disk) doRun(p []byte, r run) error {
	buf := p[r.pos : r.pos+r.n]
	switch r.kind {
	case runZero:
		clear(buf)
	case runFile:
		n, err := d.f.ReadAt(buf, r.host)
		if err == io.EOF {
			clear(buf[n:]) // the end of the last block may lie past EOF
		} else if err != nil {
			return fmt.Errorf("vhdx %s: reading %d bytes at %d: %w", d.f.Name(), len(buf), r.host, err)
		}
	case runParent:
		return d.readParent(buf, r.host)
	}
	return nil
}

// readParent reads the parent, giving zeros beyond its end.
func (d *Disk) readParent(buf []byte, off int64) error {
	psize := d.parent.Size()
	if off >= psize {
		clear(buf)
		return nil
	}
	if int64(len(buf)) > psize-off {
		clear(buf[psize-off:])
		buf = buf[:psize-off]
	}
	n, err := d.parent.ReadAt(buf, off)
	if err == io.EOF && n == len(buf) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("vhdx %s: reading parent %s at %d: %w", d.f.Name(), d.parentPath, off, err)
	}
	return nil
}
