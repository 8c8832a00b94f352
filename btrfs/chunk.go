package btrfs

import (
	"fmt"
	"sort"
)

const (
	chunkItemKey     = 228
	firstChunkTreeID = 256
	chunkHeaderSize  = 48
	stripeSize       = 32
	blockGroupRAIDs  = 1<<3 | 1<<4 | 1<<6 | 1<<7 | 1<<8 | 1<<9 | 1<<10 // RAID0, RAID1, RAID10, RAID5, RAID6, RAID1C3, RAID1C4
)

// chunk maps logical [logical, logical+length) to the device.
type chunk struct {
	logical, length, physical uint64
}

// parseChunk reads a chunk item; only one-device profiles are mapped.
func parseChunk(logical uint64, b []byte) (chunk, int, error) {
	if len(b) < chunkHeaderSize {
		return chunk{}, 0, fmt.Errorf("chunk item of %d bytes: %w", len(b), ErrCorrupt)
	}
	n := int(le.Uint16(b[44:]))
	size := chunkHeaderSize + n*stripeSize
	if n == 0 || len(b) < size {
		return chunk{}, 0, fmt.Errorf("chunk at %d with %d stripes: %w", logical, n, ErrCorrupt)
	}
	if typ := le.Uint64(b[24:]); typ&blockGroupRAIDs != 0 {
		return chunk{}, 0, fmt.Errorf("chunk at %d has RAID profile %#x: offvm reads single-device btrfs only: %w", logical, typ, ErrCorrupt)
	}
	return chunk{logical: logical, length: le.Uint64(b), physical: le.Uint64(b[chunkHeaderSize+8:])}, size, nil
}

// loadChunks reads the superblock's system chunks, then the chunk tree.
func (f *FS) loadChunks() error {
	a := f.sb.sysChunks
	for len(a) > 0 {
		if len(a) < 17 {
			return fmt.Errorf("btrfs: system chunk array: %w", ErrCorrupt)
		}
		k := readKey(a)
		c, n, err := parseChunk(k.off, a[17:])
		if err != nil {
			return fmt.Errorf("btrfs: system chunk array: %w", err)
		}
		f.chunks = append(f.chunks, c)
		a = a[17+n:]
	}
	f.sortChunks()
	var errc error
	err := f.walk(tree{f.sb.chunkRoot, f.sb.chunkLevel}, key{firstChunkTreeID, chunkItemKey, 0}, key{firstChunkTreeID, chunkItemKey, ^uint64(0)},
		func(k key, d []byte) bool {
			c, _, err := parseChunk(k.off, d)
			if err != nil {
				errc = err
				return false
			}
			f.chunks = append(f.chunks, c)
			return true
		})
	if err == nil {
		err = errc
	}
	if err != nil {
		return fmt.Errorf("btrfs: chunk tree: %w", err)
	}
	f.sortChunks()
	return nil
}

func (f *FS) sortChunks() {
	sort.Slice(f.chunks, func(i, j int) bool { return f.chunks[i].logical < f.chunks[j].logical })
}

// readLogical reads p from logical address addr, across chunks.
func (f *FS) readLogical(p []byte, addr uint64) error {
	for done := 0; done < len(p); {
		a := addr + uint64(done)
		i := sort.Search(len(f.chunks), func(i int) bool { return f.chunks[i].logical+f.chunks[i].length > a })
		if i == len(f.chunks) || f.chunks[i].logical > a {
			return fmt.Errorf("logical address %d is in no chunk: %w", a, ErrCorrupt)
		}
		c := f.chunks[i]
		n := int(min(uint64(len(p)-done), c.logical+c.length-a))
		if _, err := f.dev.ReadAt(p[done:done+n], int64(c.physical+(a-c.logical))); err != nil {
			return fmt.Errorf("reading logical %d: %w", a, err)
		}
		done += n
	}
	return nil
}
