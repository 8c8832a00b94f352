package qcow2

import (
	"errors"
	"fmt"
	"io"
)

// extent is a run of guest bytes of one kind: for kData, contiguous on the
// host from host; for kCompressed, one cluster whose L2 entry is e.
type extent struct {
	k    kind
	host int64
	e    uint64
	n    int64
}

// mapRun maps up to n guest bytes at off to the longest run that one host
// read (or one zero fill, or one backing read) can serve.
func (d *Disk) mapRun(off, n int64) (extent, error) {
	gc := off / d.cs
	in := off % d.cs
	e, err := d.entry(gc)
	if err != nil {
		return extent{}, err
	}
	k, host, err := d.classify(e)
	if err != nil {
		return extent{}, err
	}
	x := extent{k: k, host: host + in, e: e, n: min(n, d.cs-in)}
	if k == kCompressed {
		return x, nil
	}
	for x.n < n {
		e2, err := d.entry(gc + 1)
		if err != nil {
			return extent{}, err
		}
		k2, host2, err := d.classify(e2)
		if err != nil || k2 != k || (k == kData && host2 != host+d.cs) {
			break
		}
		gc, host = gc+1, host2
		x.n += min(n-x.n, d.cs)
	}
	return x, nil
}

// ReadAt reads guest bytes; like a file, a read reaching past the end
// returns what there is and io.EOF.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("qcow2 %s: read at negative offset %d", d.name, off)
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
	if d.closed {
		return 0, fmt.Errorf("qcow2 %s: read: %w", d.name, errClosed)
	}
	if err := d.read(p, off); err != nil {
		return 0, err
	}
	return len(p), eof
}

func (d *Disk) read(p []byte, off int64) error {
	for len(p) > 0 {
		x, err := d.mapRun(off, int64(len(p)))
		if err != nil {
			return err
		}
		q := p[:x.n]
		switch x.k {
		case kUnalloc:
			err = d.readParent(q, off)
		case kZero:
			clear(q)
		case kData:
			err = d.readHost(q, x.host)
		case kCompressed:
			err = d.readCompressed(x.e, off%d.cs, q)
		}
		if err != nil {
			return err
		}
		p, off = p[x.n:], off+x.n
	}
	return nil
}

// errClosed is returned by operations on a closed disk.
var errClosed = errors.New("disk is closed")
