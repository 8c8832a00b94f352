package xfs

import (
	"fmt"
	"syscall"
)

// symlinkHdr is the size of xfs_dsymlink_hdr, which starts every block
// of a v5 remote symlink target.
const (
	symlinkHdr = 56
	symlinkCRC = 12
)

// remoteSymlink keeps a target too long for the inode in blocks, as the
// kernel's xfs_symlink does: an extent list in the data fork and one
// XSLM header per block (offset, length, owner, disk address, CRC).
func (o *nsOp) remoteSymlink(r *rawInode, target string) error {
	f := o.f
	bs := int(f.sb.blockSize)
	hdr := 0 // v4 blocks hold the bare target
	if f.v5() {
		hdr = symlinkHdr
	}
	per := bs - hdr
	need := uint64((len(target) + per - 1) / per)
	start, n, err := o.sp.alloc(0, need, dataOwner(r.ino, 0))
	if err != nil {
		return err
	}
	if n < need {
		return fmt.Errorf("xfs: no %d contiguous free blocks for a %d-byte symlink target: %w", need, len(target), syscall.ENOSPC)
	}
	off, ok := f.sb.fsbToByte(start)
	if !ok {
		return fmt.Errorf("xfs: allocated block %d outside the file system: %w", start, ErrCorrupt)
	}
	for i := 0; i < int(need); i++ {
		part := target[i*per : min(len(target), (i+1)*per)]
		b := make([]byte, bs)
		dev := off + int64(i*bs)
		copy(b[hdr:], part)
		t := txn{f: f}
		if f.v5() {
			copy(b, "XSLM")
			be.PutUint32(b[4:], uint32(i*per))
			be.PutUint32(b[8:], uint32(len(part)))
			copy(b[16:32], r.uuid())
			be.PutUint64(b[32:], r.ino)
			be.PutUint64(b[40:], uint64(dev/512))
		}
		t.putCRC(dev, b, symlinkCRC)
		o.blocks = append(o.blocks, t.writes...)
	}
	r.b[5] = fmtExtents
	r.ex = []extent{{off: 0, start: start, count: need}}
	r.remap = true
	be.PutUint64(r.b[diSize:], uint64(len(target)))
	be.PutUint64(r.b[diNblocks:], be.Uint64(r.b[diNblocks:])+need)
	return nil
}
