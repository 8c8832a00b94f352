package qcow2

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/offvm/offvm/vdisk"
)

// compressedExtent decodes a compressed L2 entry into the host bytes that
// hold the data: the offset, and the sectors from the one holding it.
func (d *Disk) compressedExtent(e uint64) (off, length int64) {
	x := 62 - (d.cbits - 8)
	off = int64(e & (1<<x - 1))
	sectors := int64((e>>x)&(1<<(d.cbits-8)-1)) + 1
	return off, sectors*512 - off%512
}

// compressedClusters is the host cluster range [first, last] the
// compressed data touches: each holds one reference for it.
func (d *Disk) compressedClusters(e uint64) (first, last int64) {
	off, length := d.compressedExtent(e)
	return off / d.cs, (off + length - 1) / d.cs
}

// zCache keeps the last few decompressed clusters: a reader going through
// a compressed cluster in small pieces decompresses it once.
type zCache struct {
	mu   sync.Mutex
	keys [4]uint64
	vals [4][]byte
	next int
}

// copyOut copies the cached cluster of entry e from offset in into dst.
func (z *zCache) copyOut(e uint64, in int64, dst []byte) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	for i, k := range z.keys {
		if k == e && z.vals[i] != nil {
			copy(dst, z.vals[i][in:])
			return true
		}
	}
	return false
}

// put caches v, which the caller gives up.
func (z *zCache) put(e uint64, v []byte) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.keys[z.next], z.vals[z.next] = e, v
	z.next = (z.next + 1) % len(z.keys)
}

var (
	flatePool = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
	zstdPool  = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return err
		}
		return d
	}}
)

// readCompressed copies the compressed cluster of entry e, from offset in
// within the cluster, into dst.
func (d *Disk) readCompressed(e uint64, in int64, dst []byte) error {
	if d.zc.copyOut(e, in, dst) {
		return nil
	}
	off, length := d.compressedExtent(e)
	if off < d.cs || off >= d.fileSize {
		return fmt.Errorf("qcow2 %s: compressed cluster at %#x outside the file (%d bytes): %w", d.name, off, d.fileSize, vdisk.ErrCorrupt)
	}
	// The last sector may run past the end of the file: qemu counts whole
	// sectors but writes only the compressed bytes.
	src := make([]byte, min(length, d.fileSize-off))
	if err := d.readHost(src, off); err != nil {
		return err
	}
	cluster := make([]byte, d.cs)
	var err error
	if d.h.compression == compressZstd {
		err = inflateZstd(src, cluster)
	} else {
		err = inflateDeflate(src, cluster)
	}
	if err != nil {
		return fmt.Errorf("qcow2 %s: compressed cluster at %#x: %v: %w", d.name, off, err, vdisk.ErrCorrupt)
	}
	copy(dst, cluster[in:])
	d.zc.put(e, cluster)
	return nil
}

// inflateDeflate decodes raw deflate until dst is full; what follows in
// the last sector may belong to another cluster.
func inflateDeflate(src, dst []byte) error {
	r := flatePool.Get().(io.ReadCloser)
	defer flatePool.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(src), nil); err != nil {
		return err
	}
	_, err := io.ReadFull(r, dst)
	return err
}

func inflateZstd(src, dst []byte) error {
	v := zstdPool.Get()
	dec, ok := v.(*zstd.Decoder)
	if !ok {
		return v.(error)
	}
	defer zstdPool.Put(dec)
	if err := dec.Reset(bytes.NewReader(src)); err != nil {
		return err
	}
	_, err := io.ReadFull(dec, dst)
	return err
}
