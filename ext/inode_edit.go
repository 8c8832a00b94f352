package ext

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"
)

// rino is a raw inode being changed: the on-disk bytes, edited in place
// so that fields the writer does not know survive.
type rino struct {
	ino uint32
	b   []byte
}

var le = binary.LittleEndian

func (r *rino) mode() uint16      { return le.Uint16(r.b[0:]) }
func (r *rino) links() uint16     { return le.Uint16(r.b[26:]) }
func (r *rino) setLinks(n uint16) { le.PutUint16(r.b[26:], n) }
func (r *rino) flags() uint32     { return le.Uint32(r.b[32:]) }
func (r *rino) setFlags(v uint32) { le.PutUint32(r.b[32:], v) }
func (r *rino) gen() uint32       { return le.Uint32(r.b[0x64:]) }
func (r *rino) iblock() []byte    { return r.b[40:100] }
func (r *rino) isDir() bool       { return r.mode()&sIFMT == sIFDIR }
func (r *rino) size() uint64      { return uint64(le.Uint32(r.b[4:])) | uint64(le.Uint32(r.b[0x6C:]))<<32 }
func (r *rino) setSize(v uint64) {
	le.PutUint32(r.b[4:], uint32(v))
	le.PutUint32(r.b[0x6C:], uint32(v>>32))
}
func (r *rino) fileACL() uint64 {
	return uint64(le.Uint32(r.b[0x68:])) | uint64(le.Uint16(r.b[0x76:]))<<32
}
func (r *rino) hasExtents() bool { return r.flags()&flagExtents != 0 }
func (r *rino) setBlocks(n uint64) {
	le.PutUint32(r.b[28:], uint32(n))
	le.PutUint16(r.b[0x74:], uint16(n>>32))
}

// setTime stores t at a time field and its _extra word (epoch bits and
// nanoseconds) when the inode has room for it.
func (r *rino) setTime(off, extraOff int, t time.Time) {
	sec := t.Unix()
	le.PutUint32(r.b[off:], uint32(int32(sec)))
	if extraOff+4 <= goodOldInodeSize+int(le.Uint16(r.b[128:])) {
		epoch := uint32((sec-int64(int32(sec)))>>32) & 3
		le.PutUint32(r.b[extraOff:], epoch|uint32(t.Nanosecond())<<2)
	}
}

func (r *rino) setCtime(t time.Time) { r.setTime(12, 0x84, t) }
func (r *rino) setMtime(t time.Time) { r.setTime(16, 0x88, t) }
func (r *rino) setAtime(t time.Time) { r.setTime(8, 0x8C, t) }

// loadRaw reads inode ino from the device (not the cache), in use.
func (f *FS) loadRaw(ino uint32) (*rino, error) {
	s := f.sb
	if ino < 1 || ino > s.inodesCount {
		return nil, fmt.Errorf("ext: inode %d out of range: %w", ino, syscall.ENOENT)
	}
	g, idx := (ino-1)/s.inodesPerGroup, (ino-1)%s.inodesPerGroup
	if idx >= f.groups[g].usedInodes {
		return nil, fmt.Errorf("ext: inode %d is not in use: %w", ino, syscall.ENOENT)
	}
	r := &rino{ino: ino, b: make([]byte, s.inodeSize)}
	if err := f.readDev(r.b, f.inodeOffset(g, idx)); err != nil {
		return nil, err
	}
	if r.mode() == 0 || r.links() == 0 {
		return nil, fmt.Errorf("ext: inode %d is not in use: %w", ino, syscall.ENOENT)
	}
	if extra := int(le.Uint16(r.b[128:])); extra&3 != 0 || 128+extra > len(r.b) {
		return nil, fmt.Errorf("ext: inode %d: i_extra_isize %d: %w", ino, extra, syscall.EIO)
	}
	return r, nil
}

// storeRaw writes the inode back with its checksum.
func (f *FS) storeRaw(r *rino) error {
	s := f.sb
	f.w.inodeCsum(r.ino, r.b)
	g, idx := (r.ino-1)/s.inodesPerGroup, (r.ino-1)%s.inodesPerGroup
	return f.writeDev(r.b, f.inodeOffset(g, idx))
}

// newInode allocates an inode near dir and fills it: root-owned, times
// now, an empty extent tree unless the caller replaces i_block.
func (f *FS) newInode(dir uint32, mode uint16) (*rino, error) {
	isDir := mode&sIFMT == sIFDIR
	ino, err := f.allocInode((dir-1)/f.sb.inodesPerGroup, isDir)
	if err != nil {
		return nil, err
	}
	r := &rino{ino: ino, b: make([]byte, f.sb.inodeSize)}
	le.PutUint16(r.b[0:], mode)
	le.PutUint16(r.b[128:], 32) // i_extra_isize: the fields up to i_projid
	f.w.gen = f.w.gen*1103515245 + 12345
	le.PutUint32(r.b[0x64:], f.w.gen)
	now := time.Now()
	r.setAtime(now)
	r.setCtime(now)
	r.setMtime(now)
	r.setTime(0x90, 0x94, now) // crtime
	r.setLinks(1)
	r.setFlags(flagExtents)
	emptyExtentRoot(r.iblock())
	return r, nil
}

func emptyExtentRoot(b []byte) {
	clear(b)
	le.PutUint16(b[0:], extentMagic)
	le.PutUint16(b[4:], 4)
}

// release frees what an inode whose last link went holds: its blocks,
// its xattr block reference, and the inode itself (dtime set, as e2fsck
// expects of a deleted inode).
func (f *FS) release(r *rino) error {
	if r.hasExtents() {
		exts, leaves, err := f.loadExtents(r)
		if err != nil {
			return err
		}
		for _, e := range exts {
			if err := f.freeBlocks(e.pblk, uint64(e.n)); err != nil {
				return err
			}
		}
		for _, l := range leaves {
			if err := f.freeBlocks(l, 1); err != nil {
				return err
			}
		}
	} else if !(r.mode()&sIFMT == sIFLNK && r.size() < 60) && r.mode()&sIFMT != sIFCHR &&
		r.mode()&sIFMT != sIFBLK && r.mode()&sIFMT != sIFIFO && r.mode()&sIFMT != sIFSOCK {
		return fmt.Errorf("ext: inode %d is block-mapped; deleting it is not supported in offvm: %w", r.ino, syscall.EROFS)
	}
	if err := f.dropXattrBlock(r); err != nil {
		return err
	}
	emptyExtentRoot(r.iblock())
	r.setSize(0)
	r.setBlocks(0)
	r.setLinks(0)
	le.PutUint32(r.b[20:], uint32(time.Now().Unix())) // i_dtime
	if err := f.storeRaw(r); err != nil {
		return err
	}
	return f.freeInode(r.ino, r.isDir())
}

// dropXattrBlock releases the inode's reference to a shared xattr block.
func (f *FS) dropXattrBlock(r *rino) error {
	blk := r.fileACL()
	if blk == 0 {
		return nil
	}
	b, err := f.readBlock(blk)
	if err != nil {
		return err
	}
	if le.Uint32(b) != 0xEA020000 {
		return fmt.Errorf("ext: inode %d: xattr block %d has no magic: %w", r.ino, blk, syscall.EIO)
	}
	le.PutUint32(r.b[0x68:], 0)
	le.PutUint16(r.b[0x76:], 0)
	refs := le.Uint32(b[4:])
	if refs <= 1 {
		return f.freeBlocks(blk, 1)
	}
	le.PutUint32(b[4:], refs-1)
	if f.w.csum {
		var nr [8]byte
		le.PutUint64(nr[:], blk)
		le.PutUint32(b[16:], 0)
		le.PutUint32(b[16:], crc32cRaw(crc32cRaw(f.w.seed, nr[:]), b))
	}
	return f.writeBlock(blk, b)
}
