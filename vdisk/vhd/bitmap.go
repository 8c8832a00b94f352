package vhd

import (
	"fmt"
	"sync"
)

// maxCachedBitmaps bounds the sector bitmaps kept in memory: 512 bytes
// each for 2 MiB blocks, so 8192 of them cover 16 GiB of disk in 4 MiB.
const maxCachedBitmaps = 8192

// bitmapCache holds the sector bitmaps of allocated blocks, read on first
// use. Its own lock lets concurrent readers fill it under the disk's read
// lock; writers change bitmaps only while holding the disk's write lock.
type bitmapCache struct {
	mu sync.Mutex
	m  map[int64][]byte
}

func (c *bitmapCache) init() { c.m = make(map[int64][]byte) }

// bitmap returns the sector bitmap of allocated block blk.
func (d *Disk) bitmap(blk int64) ([]byte, error) {
	c := &d.bitmaps
	c.mu.Lock()
	bm, ok := c.m[blk]
	c.mu.Unlock()
	if ok {
		return bm, nil
	}
	bm = make([]byte, d.bitmapSize)
	if _, err := readFull(d.f, bm, int64(d.bat[blk])*sectorSize); err != nil {
		return nil, fmt.Errorf("vhd %s: reading sector bitmap of block %d: %w", d.name, blk, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[blk]; ok {
		return old, nil
	}
	c.store(blk, bm)
	return bm, nil
}

// store adds a bitmap, dropping another when the cache is full; the caller
// holds c.mu.
func (c *bitmapCache) store(blk int64, bm []byte) {
	if len(c.m) >= maxCachedBitmaps {
		for k := range c.m { // drop any one: the map's order is random enough
			delete(c.m, k)
			break
		}
	}
	c.m[blk] = bm
}

// The bitmap's most significant bit is the block's first sector.
func bitSet(bm []byte, s int64) bool { return bm[s>>3]&(0x80>>(s&7)) != 0 }

// setBits sets the bits of sectors [s0, s1) in the cached bitmap and
// writes the bytes that changed.
func (d *Disk) setBits(blk, s0, s1 int64) error {
	bm, err := d.bitmap(blk)
	if err != nil {
		return err
	}
	lo, hi := int64(-1), int64(-1)
	for s := s0; s < s1; s++ {
		if !bitSet(bm, s) {
			bm[s>>3] |= 0x80 >> (s & 7)
			if lo < 0 {
				lo = s >> 3
			}
			hi = s>>3 + 1
		}
	}
	if lo < 0 {
		return nil
	}
	if _, err := d.f.WriteAt(bm[lo:hi], int64(d.bat[blk])*sectorSize+lo); err != nil {
		return fmt.Errorf("vhd %s: writing sector bitmap of block %d: %w", d.name, blk, err)
	}
	return nil
}

// putBitmap installs the bitmap of a block just written.
func (d *Disk) putBitmap(blk int64, bm []byte) {
	d.bitmaps.mu.Lock()
	d.bitmaps.store(blk, bm)
	d.bitmaps.mu.Unlock()
}
