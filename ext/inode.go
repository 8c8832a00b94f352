package ext

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// Inode flags (i_flags).
const (
	flagCompressed       = 0x4   // e2compr: compressed file (only with the compression feature)
	flagCompressedBlocks = 0x200 // e2compr: compressed clusters inside
	flagEncrypt          = 0x800
	flagHugeFile         = 0x40000
	flagExtents          = 0x80000
	flagEAInode          = 0x200000
	flagInlineData       = 0x10000000
)

// File types in i_mode.
const (
	sIFMT   = 0xF000
	sIFSOCK = 0xC000
	sIFLNK  = 0xA000
	sIFREG  = 0x8000
	sIFBLK  = 0x6000
	sIFDIR  = 0x4000
	sIFCHR  = 0x2000
	sIFIFO  = 0x1000
)

const goodOldInodeSize = 128

// inode is one decoded inode. It is shared through the cache and never
// changed after decoding.
type inode struct {
	ino     uint32
	mode    uint16
	size    uint64
	links   uint16
	blocks  int64 // in 512-byte units
	flags   uint32
	fileACL uint64
	block   [60]byte // i_block: block map, extent root, symlink or inline data
	atime   time.Time
	mtime   time.Time
	ctime   time.Time
	// xattrArea is the in-inode extended attribute space (after
	// i_extra_isize), nil when there is none.
	xattrArea []byte
}

func (in *inode) isDir() bool     { return in.mode&sIFMT == sIFDIR }
func (in *inode) isReg() bool     { return in.mode&sIFMT == sIFREG }
func (in *inode) isSymlink() bool { return in.mode&sIFMT == sIFLNK }

// inode returns inode number ino, from the cache when it can.
func (f *FS) inode(ino uint32) (*inode, error) {
	if in, ok := f.inodes.Get(ino); ok {
		return in, nil
	}
	ep := f.inodes.Stamp()
	in, err := f.readInode(ino)
	if err != nil {
		return nil, err
	}
	// The struct, plus the raw inode its xattr area keeps alive.
	f.inodes.PutAt(ep, ino, in, 200+int(f.sb.inodeSize))
	return in, nil
}

func (f *FS) readInode(ino uint32) (*inode, error) {
	s := f.sb
	if ino < 1 || ino > s.inodesCount {
		return nil, fmt.Errorf("ext: inode %d out of range 1..%d: %w", ino, s.inodesCount, syscall.ENOENT)
	}
	g := &f.groups[(ino-1)/s.inodesPerGroup]
	idx := (ino - 1) % s.inodesPerGroup
	if g.bad != nil {
		return nil, fmt.Errorf("ext: inode %d: %w", ino, g.bad)
	}
	if idx >= atomic.LoadUint32(&g.usedInodes) { // the writer raises it
		return nil, fmt.Errorf("ext: inode %d is in the unused part of its group: %w", ino, syscall.ENOENT)
	}
	// Read the whole inode table block through the metadata cache: the
	// other inodes in it are usually the directory's next entries.
	pos := int64(idx) * s.inodeSize
	b, err := f.metaBlock(g.inodeTable + uint64(pos/s.blockSize))
	if err != nil {
		return nil, fmt.Errorf("ext: inode %d: %w", ino, err)
	}
	raw := make([]byte, s.inodeSize)
	copy(raw, b[pos%s.blockSize:])
	return f.decodeInode(ino, raw)
}

func (f *FS) decodeInode(ino uint32, raw []byte) (*inode, error) {
	le := binary.LittleEndian
	in := &inode{
		ino:   ino,
		mode:  le.Uint16(raw[0:]),
		size:  uint64(le.Uint32(raw[4:])) | uint64(le.Uint32(raw[108:]))<<32,
		links: le.Uint16(raw[26:]),
		flags: le.Uint32(raw[32:]),
	}
	dtime := le.Uint32(raw[20:])
	if in.mode == 0 || (in.links == 0 && dtime != 0) {
		return nil, fmt.Errorf("ext: inode %d is not in use: %w", ino, syscall.ENOENT)
	}
	copy(in.block[:], raw[40:100])
	in.fileACL = uint64(le.Uint32(raw[104:]))
	if f.sb.has64bit() {
		in.fileACL |= uint64(le.Uint16(raw[118:])) << 32
	}
	blocks := uint64(le.Uint32(raw[28:]))
	if f.sb.roCompat&roCompatHugeFile != 0 {
		blocks |= uint64(le.Uint16(raw[116:])) << 32
		if in.flags&flagHugeFile != 0 {
			blocks *= uint64(f.sb.blockSize / 512)
		}
	}
	in.blocks = int64(blocks & (1<<62 - 1))
	extra := 0 // i_extra_isize: how much of the large inode is fields
	if len(raw) > goodOldInodeSize {
		extra = int(le.Uint16(raw[128:]))
		if extra&3 != 0 || goodOldInodeSize+extra > len(raw) {
			return nil, fmt.Errorf("ext: inode %d: i_extra_isize %d: %w", ino, extra, syscall.EIO)
		}
		if body := raw[goodOldInodeSize+extra:]; len(body) > 4 {
			in.xattrArea = body
		}
	}
	// Each time has its _extra word at a fixed offset when the inode's
	// extra space reaches it: epoch bits (dates past 2038) and
	// nanoseconds.
	tm := func(off, extraOff int) time.Time {
		sec := int64(int32(le.Uint32(raw[off:])))
		var nsec int64
		if extraOff+4 <= goodOldInodeSize+extra {
			x := le.Uint32(raw[extraOff:])
			sec += int64(x&3) << 32
			nsec = int64(x >> 2)
		}
		return time.Unix(sec, nsec)
	}
	in.ctime, in.mtime, in.atime = tm(12, 132), tm(16, 136), tm(8, 140)
	return in, nil
}

// fileMode turns i_mode into an os.FileMode.
func fileMode(m uint16) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode | typeMode(m)
}

func typeMode(m uint16) os.FileMode {
	switch m & sIFMT {
	case sIFDIR:
		return os.ModeDir
	case sIFLNK:
		return os.ModeSymlink
	case sIFIFO:
		return os.ModeNamedPipe
	case sIFSOCK:
		return os.ModeSocket
	case sIFCHR:
		return os.ModeDevice | os.ModeCharDevice
	case sIFBLK:
		return os.ModeDevice
	}
	return 0
}

func (in *inode) attr() volume.Attr {
	return volume.Attr{
		Ino:    volume.Ino(in.ino),
		Mode:   fileMode(in.mode),
		Size:   int64(in.size & (1<<63 - 1)),
		Nlink:  uint32(in.links),
		Blocks: in.blocks,
		Atime:  in.atime,
		Mtime:  in.mtime,
		Ctime:  in.ctime,
	}
}

// checkReadable refuses content the engine cannot decode: encrypted
// inodes (fscrypt) and e2compr compressed ones. Their attributes stay
// visible.
func (in *inode) checkReadable(f *FS) error {
	if in.flags&flagEncrypt != 0 {
		return fmt.Errorf("ext: inode %d is encrypted (fscrypt); its content cannot be read without the key: %w", in.ino, syscall.EIO)
	}
	// chattr +c sets flagCompressed on ext4, which ignores it; it only
	// means compressed data under e2compr's compression feature.
	compressed := in.flags&flagCompressedBlocks != 0 ||
		in.flags&flagCompressed != 0 && f.sb.incompat&incompatCompression != 0
	if compressed {
		return fmt.Errorf("ext: inode %d holds e2compr compressed blocks, which this reader does not decode: %w", in.ino, syscall.EIO)
	}
	return nil
}
