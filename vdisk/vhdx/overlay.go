package vhdx

import (
	"io"

	"github.com/offvm/offvm/vdisk"
)

// overlayFile shows a read-only file as it would be after a log replay,
// without writing it: reads see the replayed extents on top, in order.
type overlayFile struct {
	vdisk.File
	writes []extent
	size   int64
}

func newOverlayFile(f vdisk.File, r *logReplay, size int64) *overlayFile {
	return &overlayFile{File: f, writes: r.writes, size: max(size, r.minSize)}
}

func (o *overlayFile) Size() (int64, error) { return o.size, nil }

func (o *overlayFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > o.size-off {
		p = p[:o.size-off]
	}
	n, err := o.File.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, err
	}
	clear(p[n:]) // the log may have grown the file
	end := off + int64(len(p))
	for _, x := range o.writes {
		lo, hi := max(off, x.off), min(end, x.end())
		if lo >= hi {
			continue
		}
		if x.data == nil {
			clear(p[lo-off : hi-off])
		} else {
			copy(p[lo-off:hi-off], x.data[lo-x.off:])
		}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

func (o *overlayFile) WriteAt(p []byte, off int64) (int, error) { return 0, vdisk.ErrReadOnly }
func (o *overlayFile) Truncate(int64) error                     { return vdisk.ErrReadOnly }
