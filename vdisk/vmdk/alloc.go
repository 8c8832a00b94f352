package vmdk

import (
	"fmt"
	"math"

	"github.com/offvm/offvm/vdisk"
)

// allocGrain appends a grain to the extent file and points its table
// entry at it, creating the grain table first when the directory has none.
func (s *sparse) allocGrain(gi int64, grain []byte) error {
	host, err := s.alloc(s.grainBytes)
	if err != nil {
		return err
	}
	if err := s.ensureTable(gi); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(grain, host); err != nil {
		return fmt.Errorf("vmdk %s: writing new grain at %d: %w", s.f.Name(), host, err)
	}
	s.grow(host + s.grainBytes)
	return s.setGTE(gi, uint32(host/sector))
}

// alloc reserves n bytes (a whole number of sectors) at the end of the file.
func (s *sparse) alloc(n int64) (int64, error) {
	host := s.next
	if (host+n)/sector > math.MaxUint32 {
		return 0, fmt.Errorf("vmdk %s: extent file would pass 2 TiB, beyond what a grain table entry can address: %w", s.f.Name(), vdisk.ErrUnsupported)
	}
	s.next += (n + sector - 1) / sector * sector
	return host, nil
}

// grow records that the file now reaches end.
func (s *sparse) grow(end int64) {
	s.fileSize = max(s.fileSize, end)
	s.next = max(s.next, (end+sector-1)/sector*sector)
}

// ensureTable gives grain gi's directory entry a table, in both
// directories: new tables are zeroed on disk at once, the directory
// entries wait for Flush.
func (s *sparse) ensureTable(gi int64) error {
	gdi := uint64(gi) / uint64(s.hdr.NumGTEsPerGT)
	if gdi >= uint64(len(s.gd)) {
		return fmt.Errorf("vmdk %s: grain %d lies beyond the %d-sector capacity of the extent header: %w", s.f.Name(), gi, s.hdr.Capacity, vdisk.ErrCorrupt)
	}
	if s.gd[gdi] != 0 {
		return nil
	}
	newTable := func() (uint32, error) {
		host, err := s.alloc(s.gtBytes)
		if err != nil {
			return 0, err
		}
		zero := make([]byte, (s.gtBytes+sector-1)/sector*sector)
		if _, err := s.f.WriteAt(zero, host); err != nil {
			return 0, fmt.Errorf("vmdk %s: writing new grain table at %d: %w", s.f.Name(), host, err)
		}
		s.grow(host + int64(len(zero)))
		return uint32(host / sector), nil
	}
	sec, err := newTable()
	if err != nil {
		return err
	}
	if s.rgd != nil {
		rsec, err := newTable()
		if err != nil {
			return err
		}
		s.rgd[gdi] = rsec
	}
	s.mu.Lock()
	s.gd[gdi] = sec
	s.gts[uint32(gdi)] = make([]uint32, s.hdr.NumGTEsPerGT)
	s.gdDirty = s.gdDirty.add(uint32(gdi))
	s.mu.Unlock()
	return nil
}

// setGTE changes grain gi's entry in memory and marks it for Flush.
func (s *sparse) setGTE(gi int64, v uint32) error {
	if err := s.ensureTable(gi); err != nil {
		return err
	}
	gdi := uint32(uint64(gi) / uint64(s.hdr.NumGTEsPerGT))
	i := uint32(uint64(gi) % uint64(s.hdr.NumGTEsPerGT))
	gt, err := s.table(gdi)
	if err != nil {
		return err
	}
	s.mu.Lock()
	gt[i] = v
	s.gtDirty[gdi] = s.gtDirty[gdi].add(i)
	s.mu.Unlock()
	return nil
}
