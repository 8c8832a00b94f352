package vmdk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"github.com/offvm/offvm/vdisk"
)

// grainCacheBytes bounds the inflated grains kept in memory (64 with the
// usual 64 KiB grains), so that readers going through grains in small
// pieces inflate each once.
const grainCacheBytes = 4 << 20

type grainKey struct {
	s  *sparse
	gi int64
}

// grainCache is a small LRU of inflated grains.
type grainCache struct {
	mu    sync.Mutex
	keys  []grainKey // most recent last
	grain map[grainKey][]byte
	bytes int
}

func (c *grainCache) get(k grainKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.grain[k]
	if ok {
		c.touch(k)
	}
	return g, ok
}

func (c *grainCache) put(k grainKey, g []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grain == nil {
		c.grain = map[grainKey][]byte{}
	}
	if _, ok := c.grain[k]; ok {
		return
	}
	for len(c.keys) > 0 && c.bytes+len(g) > grainCacheBytes {
		c.bytes -= len(c.grain[c.keys[0]])
		delete(c.grain, c.keys[0])
		c.keys = c.keys[1:]
	}
	c.grain[k] = g
	c.bytes += len(g)
	c.touch(k)
}

func (c *grainCache) touch(k grainKey) {
	for i, x := range c.keys {
		if x == k {
			c.keys = append(c.keys[:i], c.keys[i+1:]...)
			break
		}
	}
	c.keys = append(c.keys, k)
}

// compressedGrain returns the inflated content of grain gi stored at
// sector gte. The cached slice must not be modified.
func (d *Disk) compressedGrain(s *sparse, gi int64, gte uint32) ([]byte, error) {
	k := grainKey{s, gi}
	if g, ok := d.grains.get(k); ok {
		return g, nil
	}
	g, err := s.inflate(gi, gte)
	if err != nil {
		return nil, err
	}
	d.grains.put(k, g)
	return g, nil
}

// maxDeflated bounds a compressed grain: deflate never grows data by more
// than a few bytes per 16 KiB block.
func (s *sparse) maxDeflated() int64 { return s.grainBytes + s.grainBytes/64 + 1024 }

// inflate reads a compressed grain: with markers, a 12-byte header (the
// grain's LBA and the compressed length) precedes the deflate data. The
// compressed bytes are read in one host read: host calls can be dear.
func (s *sparse) inflate(gi int64, gte uint32) ([]byte, error) {
	off := int64(gte) * sector
	if off >= s.streamEnd {
		return nil, fmt.Errorf("vmdk %s: compressed grain %d at sector %d points past end of file: %w", s.f.Name(), gi, gte, vdisk.ErrCorrupt)
	}
	length := min(s.streamEnd-off, s.maxDeflated()+12)
	buf := make([]byte, length)
	if _, err := s.f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk %s: reading compressed grain %d: %w", s.f.Name(), gi, err)
	}
	if s.markers {
		size := int64(0)
		if len(buf) >= 12 {
			size = int64(binary.LittleEndian.Uint32(buf[8:]))
		}
		if size == 0 || size > int64(len(buf))-12 {
			return nil, fmt.Errorf("vmdk %s: grain %d marker at sector %d claims %d compressed bytes (at most %d fit): %w", s.f.Name(), gi, gte, size, len(buf)-12, vdisk.ErrCorrupt)
		}
		buf = buf[12 : 12+size]
	}
	grain := make([]byte, s.grainBytes)
	if err := inflateInto(grain, buf); err != nil {
		return nil, fmt.Errorf("vmdk %s: inflating grain %d at sector %d: %v: %w", s.f.Name(), gi, gte, err, vdisk.ErrCorrupt)
	}
	return grain, nil
}

// inflateInto decompresses a zlib stream (what VMware and qemu write) or,
// failing its header, raw deflate, into dst; a short grain ends in zeros.
func inflateInto(dst, data []byte) error {
	if len(data) < 2 {
		return io.ErrUnexpectedEOF
	}
	src := bytes.NewReader(data)
	var r io.ReadCloser
	if data[0]&0x0f == 8 && (uint16(data[0])<<8|uint16(data[1]))%31 == 0 {
		zr, err := zlib.NewReader(src)
		if err != nil {
			return err
		}
		r = zr
	} else {
		r = flate.NewReader(src)
	}
	defer r.Close()
	for n := 0; n < len(dst); {
		m, err := r.Read(dst[n:])
		n += m
		if err == io.EOF {
			return nil // a clean end before the grain is full: zeros follow
		}
		if err != nil {
			return err
		}
	}
	return nil
}
