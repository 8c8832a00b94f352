package fat

import (
	"fmt"
	"syscall"
	"time"

	"github.com/offvm/offvm/internal/devio"
	"github.com/offvm/offvm/volume"
)

// WriteAt writes file content, growing the file (zero-filled up to off).
func (v *Volume) WriteAt(ino volume.Ino, p []byte, off int64) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, err := v.writableFile(ino)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("fat: negative offset: %w", syscall.EINVAL)
	}
	end := off + int64(len(p))
	if end > maxFileBytes {
		return 0, fmt.Errorf("fat: %q: FAT files end at 4 GiB: %w", n.name, syscall.EFBIG)
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Allocate first: on ENOSPC nothing has changed.
	chain, err := v.ensureClusters(n, end)
	if err != nil {
		return 0, err
	}
	if size := int64(n.ent.size); off > size {
		if err := v.zeroFill(n, chain, size, off); err != nil {
			return 0, err
		}
	}
	err = v.extents(chain, off, int64(len(p)), func(dev, lo, hi int64) error {
		if err := devio.Write(v.dev, p[lo:hi], dev); err != nil {
			return fmt.Errorf("fat: writing %q: %w", n.name, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n.ent.size = uint32(max(end, int64(n.ent.size)))
	if err := v.touch(n); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (v *Volume) writableFile(ino volume.Ino) (*node, error) {
	if err := v.writable(); err != nil {
		return nil, err
	}
	n, err := v.get(ino)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, fmt.Errorf("fat: %q: %w", n.name, syscall.EISDIR)
	}
	return n, nil
}

// touch stamps mtime and the archive bit after a content change, then
// writes the entry and the FAT.
func (v *Volume) touch(n *node) error {
	n.ent.wrtDate, n.ent.wrtTime, _ = encodeTime(time.Now())
	n.ent.attr |= attrArchive
	if err := v.writeEnt(n); err != nil {
		return err
	}
	return v.flushMeta()
}

// Truncate sets a file's size: shrinking frees clusters past the end,
// growing fills with zeros.
func (v *Volume) Truncate(ino volume.Ino, size int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, err := v.writableFile(ino)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("fat: negative size: %w", syscall.EINVAL)
	}
	if size > maxFileBytes {
		return fmt.Errorf("fat: %q: FAT files end at 4 GiB: %w", n.name, syscall.EFBIG)
	}
	if err := v.resize(n, size); err != nil {
		return err
	}
	return v.touch(n)
}

// resize changes the size of n, freeing or zero-filling clusters.
func (v *Volume) resize(n *node, size int64) error {
	old := int64(n.ent.size)
	switch {
	case size < old:
		if err := v.shrink(n, size); err != nil {
			return err
		}
	case size > old:
		chain, err := v.ensureClusters(n, size)
		if err != nil {
			return err
		}
		if err := v.zeroFill(n, chain, old, size); err != nil {
			return err
		}
	}
	n.ent.size = uint32(size)
	return nil
}

func (v *Volume) clustersFor(size int64) int {
	return int((size + v.g.clusterSize - 1) / v.g.clusterSize)
}

// ensureClusters grows n's chain to hold size bytes and returns it.
func (v *Volume) ensureClusters(n *node, size int64) ([]uint32, error) {
	chain, err := v.fileChain(n)
	if err != nil {
		return nil, err
	}
	need := v.clustersFor(size) - len(chain)
	if need <= 0 {
		return chain, nil
	}
	add, err := v.allocate(need)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		n.ent.cluster = add[0]
	} else {
		v.fat.set(chain[len(chain)-1], add[0])
	}
	chain = append(chain, add...)
	v.cacheChain(n, chain)
	return chain, nil
}

// shrink frees the clusters past size.
func (v *Volume) shrink(n *node, size int64) error {
	chain, err := v.fileChain(n)
	if err != nil {
		return err
	}
	keep := v.clustersFor(size)
	if keep >= len(chain) {
		return nil
	}
	if keep == 0 {
		n.ent.cluster = 0
	} else {
		v.fat.set(chain[keep-1], v.fat.eoc())
	}
	v.release(chain[keep:])
	v.cacheChain(n, chain[:keep:keep])
	return nil
}

// zeroFill writes zeros over [from, to) of n, whose clusters (chain)
// exist.
func (v *Volume) zeroFill(n *node, chain []uint32, from, to int64) error {
	const chunk = 1 << 20
	z := make([]byte, min(to-from, chunk))
	for pos := from; pos < to; pos += chunk {
		m := min(chunk, to-pos)
		err := v.extents(chain, pos, m, func(dev, lo, hi int64) error {
			if err := devio.Write(v.dev, z[:hi-lo], dev); err != nil {
				return fmt.Errorf("fat: zero-filling %q: %w", n.name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
