package xfs

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/offvm/offvm/volume"
)

// Data and attribute fork formats.
const (
	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3
)

const (
	flags2Bigtime = 1 << 3
	flags2Nrext64 = 1 << 4
)

type inode struct {
	ino                    uint64
	mode                   uint16
	version                uint8
	format, aformat        uint8
	nlink                  uint32
	uid, gid               uint32
	size                   int64
	nblocks                uint64
	nextents, anextents    uint64
	atime, mtime, ctime    time.Time
	dfork, afork           []byte // the literal area of each fork
	extents                []extent
	aextents               []extent
	extentsErr, aextentErr error
}

func (in *inode) isDir() bool  { return in.mode&syscall.S_IFMT == syscall.S_IFDIR }
func (in *inode) isLink() bool { return in.mode&syscall.S_IFMT == syscall.S_IFLNK }
func (in *inode) isReg() bool  { return in.mode&syscall.S_IFMT == syscall.S_IFREG }

// readInode reads and checks inode ino.
func (f *FS) readInode(ino uint64) (*inode, error) {
	off, ok := f.sb.inoToByte(ino)
	if !ok {
		return nil, fmt.Errorf("xfs: inode %d outside the file system: %w", ino, syscall.ENOENT)
	}
	b := make([]byte, f.sb.inodeSize)
	if _, err := f.dev.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("xfs: reading inode %d: %w", ino, err)
	}
	if b[0] != 'I' || b[1] != 'N' {
		return nil, fmt.Errorf("xfs: inode %d: bad magic: %w", ino, ErrCorrupt)
	}
	in := &inode{ino: ino, mode: be.Uint16(b[2:]), version: b[4], format: b[5], aformat: b[83],
		uid: be.Uint32(b[8:]), gid: be.Uint32(b[12:]), nlink: be.Uint32(b[16:]),
		size: int64(be.Uint64(b[56:])), nblocks: be.Uint64(b[64:])}
	if in.version == 1 {
		in.nlink = uint32(be.Uint16(b[6:]))
	}
	core := 100
	var flags2 uint64
	if in.version == 3 {
		core = 176
		if !crcOK(b, 100) {
			return nil, fmt.Errorf("xfs: inode %d: checksum mismatch: %w", ino, ErrCorrupt)
		}
		if got := be.Uint64(b[152:]); got != ino {
			return nil, fmt.Errorf("xfs: inode %d holds number %d: %w", ino, got, ErrCorrupt)
		}
		flags2 = be.Uint64(b[120:])
	}
	if flags2&flags2Nrext64 != 0 {
		in.nextents, in.anextents = be.Uint64(b[24:]), uint64(be.Uint32(b[76:]))
	} else {
		in.nextents, in.anextents = uint64(be.Uint32(b[76:])), uint64(be.Uint16(b[80:]))
	}
	big := flags2&flags2Bigtime != 0
	in.atime, in.mtime, in.ctime = xfsTime(b[32:], big), xfsTime(b[40:], big), xfsTime(b[48:], big)
	if in.size < 0 {
		return nil, fmt.Errorf("xfs: inode %d: size %d: %w", ino, in.size, ErrCorrupt)
	}
	lit := b[core:]
	if fo := int(b[82]) * 8; fo > 0 {
		if fo >= len(lit) {
			return nil, fmt.Errorf("xfs: inode %d: attr fork offset %d: %w", ino, fo, ErrCorrupt)
		}
		in.dfork, in.afork = lit[:fo], lit[fo:]
	} else {
		in.dfork = lit
	}
	return in, nil
}

// xfsTime decodes a timestamp: seconds and nanoseconds, or with bigtime
// nanoseconds since the old 32-bit epoch's start (December 1901).
func xfsTime(b []byte, big bool) time.Time {
	if big {
		ns := be.Uint64(b)
		return time.Unix(int64(ns/1e9)-(1<<31), int64(ns%1e9))
	}
	return time.Unix(int64(int32(be.Uint32(b))), int64(be.Uint32(b[4:])%1e9))
}

func (in *inode) attr() volume.Attr {
	a := volume.Attr{Ino: volume.Ino(in.ino), Size: in.size, Nlink: in.nlink,
		Blocks: 0, Atime: in.atime, Mtime: in.mtime, Ctime: in.ctime}
	a.Mode = os.FileMode(in.mode & 0o777)
	if in.mode&syscall.S_ISUID != 0 {
		a.Mode |= os.ModeSetuid
	}
	if in.mode&syscall.S_ISGID != 0 {
		a.Mode |= os.ModeSetgid
	}
	if in.mode&syscall.S_ISVTX != 0 {
		a.Mode |= os.ModeSticky
	}
	switch in.mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		a.Mode |= os.ModeDir
	case syscall.S_IFLNK:
		a.Mode |= os.ModeSymlink
	case syscall.S_IFCHR:
		a.Mode |= os.ModeDevice | os.ModeCharDevice
	case syscall.S_IFBLK:
		a.Mode |= os.ModeDevice
	case syscall.S_IFIFO:
		a.Mode |= os.ModeNamedPipe
	case syscall.S_IFSOCK:
		a.Mode |= os.ModeSocket
	}
	return a
}
