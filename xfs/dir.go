package xfs

import (
	"fmt"
	"os"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// leafOffset is where a directory's leaf and free-index blocks start
// (32 GiB into its data fork); everything below holds entries.
const leafOffset = 32 << 30

// ftype values of directory entries.
var ftypeMode = map[byte]os.FileMode{1: 0, 2: os.ModeDir, 3: os.ModeDevice | os.ModeCharDevice, 4: os.ModeDevice, 5: os.ModeNamedPipe, 6: os.ModeSocket, 7: os.ModeSymlink}

type dirEnt struct {
	name string
	ino  uint64
	ft   byte
}

// readDir lists a directory in the order of its blocks.
func (f *FS) readDir(in *inode) ([]dirEnt, error) {
	if !in.isDir() {
		return nil, syscall.ENOTDIR
	}
	switch in.format {
	case fmtLocal:
		return f.shortformDir(in)
	case fmtExtents, fmtBtree:
		ex, err := f.extentsOf(in)
		if err != nil {
			return nil, err
		}
		return f.blockDir(in, ex)
	}
	return nil, fmt.Errorf("xfs: directory %d in format %d: %w", in.ino, in.format, ErrCorrupt)
}

func (f *FS) shortformDir(in *inode) ([]dirEnt, error) {
	b := in.dfork
	bad := func(what string) error {
		return fmt.Errorf("xfs: short-form directory %d: %s: %w", in.ino, what, ErrCorrupt)
	}
	if in.size < 6 || in.size > int64(len(b)) {
		return nil, bad(fmt.Sprintf("size %d in a fork of %d bytes", in.size, len(b)))
	}
	b = b[:in.size]
	count, i8 := int(b[0]), b[1]
	isz := 4
	if i8 != 0 {
		count, isz = int(i8), 8
	}
	p := 2 + isz
	var out []dirEnt
	for i := 0; i < count; i++ {
		if p+3 > len(b) {
			return nil, bad("entry past the end")
		}
		n := int(b[p])
		p += 3
		need := n + isz
		if f.sb.ftype {
			need++
		}
		if n == 0 || p+need > len(b) {
			return nil, bad("entry past the end")
		}
		e := dirEnt{name: string(b[p : p+n])}
		p += n
		if f.sb.ftype {
			e.ft = b[p]
			p++
		}
		e.ino = readIno(b[p:], isz)
		p += isz
		out = append(out, e)
	}
	return out, nil
}

func readIno(b []byte, size int) uint64 {
	if size == 8 {
		return be.Uint64(b) & (1<<56 - 1)
	}
	return uint64(be.Uint32(b))
}

// blockDir reads the data blocks of a block, leaf or node directory.
func (f *FS) blockDir(in *inode, ex []extent) ([]dirEnt, error) {
	dbs := f.sb.dirBlkSize
	fsbPerDir := uint64(dbs / f.sb.blockSize)
	limit := uint64(leafOffset / f.sb.blockSize)
	var out []dirEnt
	buf := make([]byte, dbs)
	for _, e := range ex {
		if e.off >= limit {
			break
		}
		for blk := e.off - e.off%fsbPerDir; blk < min(e.off+e.count, limit); blk += fsbPerDir {
			if blk < e.off {
				continue
			}
			if err := f.readFork(ex, buf, int64(blk)*f.sb.blockSize); err != nil {
				return nil, fmt.Errorf("xfs: directory %d: %w", in.ino, err)
			}
			ents, err := f.dirBlock(in, buf, blk)
			if err != nil {
				return nil, err
			}
			out = append(out, ents...)
			if len(out) > 1<<24 {
				return nil, fmt.Errorf("xfs: directory %d: too many entries: %w", in.ino, ErrCorrupt)
			}
		}
	}
	return out, nil
}

// dirBlock parses one directory data block (XD2B/XD2D, XDB3/XDD3).
func (f *FS) dirBlock(in *inode, b []byte, blk uint64) ([]dirEnt, error) {
	bad := func(what string) error {
		return fmt.Errorf("xfs: directory %d block %d: %s: %w", in.ino, blk, what, ErrCorrupt)
	}
	magic := string(b[:4])
	hdr := 16
	end := len(b)
	switch magic {
	case "XD2B", "XD2D":
		if f.sb.version != 4 {
			return nil, bad("v4 block in a v5 file system")
		}
	case "XDB3", "XDD3":
		hdr = 64
		if !crcOK(b, 4) {
			return nil, bad("checksum mismatch")
		}
		if owner := be.Uint64(b[40:]); owner != in.ino {
			return nil, bad(fmt.Sprintf("owned by inode %d", owner))
		}
	default:
		return nil, bad(fmt.Sprintf("magic %q", magic))
	}
	if magic == "XD2B" || magic == "XDB3" { // leaf entries and a tail end the block
		count := int(be.Uint32(b[len(b)-8:]))
		end = len(b) - 8 - count*8
		if end < hdr {
			return nil, bad("leaf tail too big")
		}
	}
	var out []dirEnt
	for p := hdr; p < end; {
		if p+8 > end {
			return nil, bad("entry past the end")
		}
		if be.Uint16(b[p:]) == 0xffff { // unused space
			n := int(be.Uint16(b[p+2:]))
			if n < 8 || n%8 != 0 || p+n > end {
				return nil, bad("free space of bad length")
			}
			p += n
			continue
		}
		if p+11 > end {
			return nil, bad("entry past the end")
		}
		ino, n := be.Uint64(b[p:]), int(b[p+8])
		size := 8 + 1 + n + 2
		if f.sb.ftype {
			size++
		}
		size = (size + 7) &^ 7
		if n == 0 || p+size > end {
			return nil, bad("entry past the end")
		}
		e := dirEnt{name: string(b[p+9 : p+9+n]), ino: ino}
		if f.sb.ftype {
			e.ft = b[p+9+n]
		}
		if e.name != "." && e.name != ".." {
			out = append(out, e)
		}
		p += size
	}
	return out, nil
}

func (f *FS) entries(e []dirEnt) []volume.DirEntry {
	out := make([]volume.DirEntry, 0, len(e))
	for _, d := range e {
		m, ok := ftypeMode[d.ft]
		if !ok {
			if a, err := f.GetAttr(volume.Ino(d.ino)); err == nil {
				m = a.Mode & os.ModeType
			}
		}
		out = append(out, volume.DirEntry{Name: d.name, Ino: volume.Ino(d.ino), Mode: m})
	}
	return out
}
