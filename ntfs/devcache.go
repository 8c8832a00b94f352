package ntfs

import (
	"github.com/offvm/offvm/internal/lru"
	"github.com/offvm/offvm/volume"
)

// An operation on a big directory reads the same few device blocks many
// times: the records it edits (once to edit them, once more to keep their
// old bytes for undo), the MFT and index bitmaps, the index blocks on the
// path, the directory's attribute list. Through the mount each read is a
// system call into the overlay. devCache keeps recent small reads of a
// volume being written, write-through, so that they cost a copy.

const (
	devBlock         = 4096
	maxDevCacheBytes = 4 << 20
	// maxCachedRead: metadata reads are records, index blocks and
	// bitmaps; bigger reads are file data and go straight through.
	maxCachedRead = 16 << 10
)

// devCache is a volume.Device keeping aligned blocks of what was read. It
// is installed when a volume is first written (read-only volumes keep only
// their parsed caches); every write goes through it, and what it holds is
// always what the device holds: a write that fails drops the blocks it
// touched, whatever part of it reached the device.
type devCache struct {
	volume.Device
	blocks *lru.Cache[int64, []byte]
}

func newDevCache(d volume.Device) *devCache {
	return &devCache{Device: d, blocks: lru.New[int64, []byte](maxDevCacheBytes)}
}

// ReadAt serves p from cached blocks, reading the missing span once.
func (c *devCache) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 || len(p) > maxCachedRead || off < 0 || off+int64(len(p)) > c.Size() {
		return c.Device.ReadAt(p, off)
	}
	first, last := off/devBlock, (off+int64(len(p))-1)/devBlock
	if c.copyOut(p, off, first, last) {
		return len(p), nil
	}
	lo, hi := first*devBlock, min((last+1)*devBlock, c.Size())
	ep := c.blocks.Stamp()
	buf := make([]byte, hi-lo)
	if _, err := c.Device.ReadAt(buf, lo); err != nil {
		return c.Device.ReadAt(p, off) // the device's own answer, error and all
	}
	for b := first; b <= last; b++ {
		s := (b - first) * devBlock
		c.blocks.PutAt(ep, b, buf[s:min(s+devBlock, int64(len(buf)))], devBlock)
	}
	copy(p, buf[off-lo:])
	return len(p), nil
}

// copyOut fills p from blocks first..last when all are cached.
func (c *devCache) copyOut(p []byte, off, first, last int64) bool {
	for b := first; b <= last; b++ {
		blk, ok := c.blocks.Get(b)
		if !ok {
			return false
		}
		bs := b * devBlock
		lo, hi := max(off, bs), min(off+int64(len(p)), bs+int64(len(blk)))
		if lo >= hi {
			return false
		}
		copy(p[lo-off:hi-off], blk[lo-bs:hi-bs])
	}
	return true
}

// WriteAt writes through and brings the cached blocks it covers up to
// date, in place: writes hold the volume's lock alone, so no copyOut runs
// meanwhile.
func (c *devCache) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.Device.WriteAt(p, off)
	if len(p) == 0 {
		return n, err
	}
	first, last := off/devBlock, (off+int64(len(p))-1)/devBlock
	for b := first; b <= last; b++ {
		blk, ok := c.blocks.Get(b)
		if !ok {
			continue
		}
		if err != nil {
			c.blocks.Remove(b)
			continue
		}
		bs := b * devBlock
		lo, hi := max(off, bs), min(off+int64(len(p)), bs+int64(len(blk)))
		copy(blk[lo-bs:hi-bs], p[lo-off:hi-off])
	}
	return n, err
}
