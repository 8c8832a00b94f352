package vmdk

import (
	"fmt"
	"io"
	"sort"

	"github.com/offvm/offvm/vdisk"
)

// ReadAt reads the virtual disk. Reads past the end return what lies
// before it and io.EOF, as a file does.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("vmdk %s: read at %d: %w", d.name, off, vdisk.ErrOutOfRange)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > d.size-off {
		p, eof = p[:d.size-off], io.EOF
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	err := d.eachExtent(p, off, d.readExtent)
	if err != nil {
		return 0, err
	}
	return len(p), eof
}

// eachExtent splits an access into the extents it covers.
func (d *Disk) eachExtent(p []byte, off int64, do func(e *extent, p []byte, pos int64) error) error {
	i := sort.Search(len(d.extents), func(i int) bool {
		e := d.extents[i]
		return e.start+e.size > off
	})
	for ; len(p) > 0 && i < len(d.extents); i++ {
		e := d.extents[i]
		pos := off - e.start
		n := min(int64(len(p)), e.size-pos)
		if err := do(e, p[:n], pos); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

func (d *Disk) readExtent(e *extent, p []byte, pos int64) error {
	switch {
	case e.line.access == "NOACCESS":
		return fmt.Errorf("vmdk %s: extent %q is NOACCESS: %w", d.name, e.line.file, vdisk.ErrUnsupported)
	case e.line.kind == "ZERO":
		clear(p)
		return nil
	case e.sp == nil:
		return readHost(e.f, p, e.flatOff+pos)
	}
	return d.readSparse(e, p, pos)
}

func (d *Disk) readSparse(e *extent, p []byte, pos int64) error {
	s := e.sp
	for len(p) > 0 {
		r, err := d.mapRun(s, pos, int64(len(p)))
		if err != nil {
			return err
		}
		q := p[:r.n]
		switch r.kind {
		case runData:
			err = readHost(s.f, q, r.host)
		case runZero:
			clear(q)
		case runParent:
			err = d.readParent(q, e.start+pos)
		case runCompressed:
			var g []byte
			if g, err = d.compressedGrain(s, r.gi, r.gte); err == nil {
				copy(q, g[pos%s.grainBytes:])
			}
		}
		if err != nil {
			return err
		}
		p, pos = p[r.n:], pos+r.n
	}
	return nil
}

// readHost reads a host file; bytes past its end read as zeros (a flat
// extent may be a sparse host file cut short, a last grain may be partial).
func readHost(f vdisk.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if err == io.EOF {
		clear(p[n:])
		return nil
	}
	if err != nil {
		return fmt.Errorf("vmdk %s: read at %d: %w", f.Name(), off, err)
	}
	return nil
}
