package fat

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/offvm/offvm/internal/devio"
)

// FSInfo (FAT32) field offsets, fatgen103 "FAT32 FSInfo Sector Structure".
const (
	fsiLeadSig   = 0x41615252
	fsiStrucSig  = 0x61417272
	fsiFreeCount = 488
	fsiNextFree  = 492
)

// countFree counts free clusters from the FAT itself; FSInfo's count is only
// a hint and may be stale, so it is rewritten from this one after a change.
func (v *Volume) countFree() {
	v.free = 0
	for c := uint32(2); c <= v.fat.max; c++ {
		if v.fat.get(c) == 0 {
			v.free++
		}
	}
	v.nextFree = 2
}

// readFSInfo checks the FSInfo signatures and takes its next-free hint.
func (v *Volume) readFSInfo() {
	if v.g.fsInfo == 0 {
		return
	}
	b := make([]byte, 512)
	if _, err := v.dev.ReadAt(b, v.g.fsInfo); err != nil {
		v.g.fsInfo = 0
		return
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != fsiLeadSig || le.Uint32(b[484:]) != fsiStrucSig {
		v.g.fsInfo = 0
		return
	}
	if n := le.Uint32(b[fsiNextFree:]); v.g.valid(n) {
		v.nextFree = n
	}
}

func (v *Volume) writeFSInfo() error {
	if v.g.fsInfo == 0 || !v.fsInfoDirty {
		return nil
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], v.free)
	binary.LittleEndian.PutUint32(b[4:], v.nextFree)
	if err := devio.Write(v.dev, b[:], v.g.fsInfo+fsiFreeCount); err != nil {
		return fmt.Errorf("fat: writing FSInfo: %w", err)
	}
	v.fsInfoDirty = false
	return nil
}

// allocate takes count free clusters, starting at the next-free hint, and
// links them into one chain ending in an end mark.
func (v *Volume) allocate(count int) ([]uint32, error) {
	if count <= 0 {
		return nil, nil
	}
	if uint32(count) > v.free {
		return nil, fmt.Errorf("fat: %d clusters wanted, %d free: %w", count, v.free, syscall.ENOSPC)
	}
	out := make([]uint32, 0, count)
	c := v.nextFree
	for scanned := uint32(0); len(out) < count && scanned < v.g.clusters; scanned++ {
		if !v.g.valid(c) {
			c = 2
		}
		if v.fat.get(c) == 0 {
			out = append(out, c)
		}
		c++
	}
	if len(out) < count {
		return nil, fmt.Errorf("fat: free count says %d, found %d: %w", v.free, len(out), syscall.ENOSPC)
	}
	for i, c := range out {
		next := v.fat.eoc()
		if i+1 < len(out) {
			next = out[i+1]
		}
		v.fat.set(c, next)
	}
	v.free -= uint32(count)
	v.nextFree = out[len(out)-1] + 1
	if !v.g.valid(v.nextFree) {
		v.nextFree = 2
	}
	v.fsInfoDirty = true
	return out, nil
}

// release marks clusters free.
func (v *Volume) release(cs []uint32) {
	for _, c := range cs {
		if v.fat.get(c) != 0 {
			v.fat.set(c, 0)
			v.free++
		}
	}
	if len(cs) > 0 {
		v.fsInfoDirty = true
	}
}

// zeroClusters fills clusters with zeros on the device (new directory
// clusters must read as empty).
func (v *Volume) zeroClusters(cs []uint32) error {
	z := make([]byte, v.g.clusterSize)
	for _, c := range cs {
		if err := devio.Write(v.dev, z, v.g.clusterOffset(c)); err != nil {
			return fmt.Errorf("fat: zeroing cluster %d: %w", c, err)
		}
	}
	return nil
}

// flushMeta writes the FAT and FSInfo changes; every write operation ends
// with it so the device is consistent between operations.
func (v *Volume) flushMeta() error {
	if err := v.flushFAT(); err != nil {
		return err
	}
	return v.writeFSInfo()
}
