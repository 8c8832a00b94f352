package vmdk

import (
	"fmt"

	"github.com/offvm/offvm/vdisk"
)

// runKind says where the bytes of a run of grains come from.
type runKind int

const (
	runData       runKind = iota // uncompressed grains, contiguous in the host file
	runZero                      // reads as zeros
	runParent                    // unallocated in a child: the parent's bytes
	runCompressed                // one compressed grain
)

// run is the longest stretch from a position that one host operation
// serves: contiguous grains become one read or write.
type run struct {
	kind runKind
	n    int64 // bytes
	host int64 // host offset of the first byte (runData)
	gi   int64 // grain index of the first byte
	gte  uint32
}

// grainRun maps one grain from pos (bytes into the extent), clipped to n.
func (d *Disk) grainRun(s *sparse, pos, n int64) (run, error) {
	gi, in := pos/s.grainBytes, pos%s.grainBytes
	r := run{gi: gi, n: min(s.grainBytes-in, n)}
	g, err := s.gte(gi)
	if err != nil {
		return r, err
	}
	r.gte = g
	switch {
	case g == 0 && d.parent != nil:
		r.kind = runParent
	case g == 0 || (g == gteZeroed && s.zeroGrain):
		r.kind = runZero
	case s.compressed:
		r.kind = runCompressed
	default:
		r.kind, r.host = runData, int64(g)*sector+in
		if int64(g) >= s.fileSize/sector {
			return r, fmt.Errorf("vmdk %s: grain %d at sector %d points past end of file: %w", s.f.Name(), gi, g, vdisk.ErrCorrupt)
		}
	}
	return r, nil
}

// mapRun extends the grain at pos over the following grains of the same
// kind (and, for data, adjacent on the host), up to n bytes.
func (d *Disk) mapRun(s *sparse, pos, n int64) (run, error) {
	r, err := d.grainRun(s, pos, n)
	if err != nil || r.kind == runCompressed {
		return r, err
	}
	for r.n < n {
		nx, err := d.grainRun(s, pos+r.n, n-r.n)
		if err != nil {
			return r, err
		}
		if nx.kind != r.kind || (r.kind == runData && nx.host != r.host+r.n) {
			break
		}
		r.n += nx.n
	}
	return r, nil
}
