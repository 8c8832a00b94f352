package ext

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// maxDirSize bounds how much of one directory is read (a million entries
// take some 40 MiB); beyond it the directory is refused, not read.
const maxDirSize = 256 << 20

// dir is a directory's listing, read once and cached: entries in disk
// order and an index by name for Lookup.
type dir struct {
	ents  []volume.DirEntry
	index map[string]int
}

// cost approximates the bytes a listing holds: each entry, its name
// twice (slice and index) and the map's overhead.
func (d *dir) cost() int {
	n := 64
	for _, e := range d.ents {
		n += 96 + 2*len(e.Name)
	}
	return n
}

// Directory entry file types (with the filetype feature).
var direntTypes = [...]os.FileMode{
	1: 0, 2: os.ModeDir, 3: os.ModeDevice | os.ModeCharDevice, 4: os.ModeDevice,
	5: os.ModeNamedPipe, 6: os.ModeSocket, 7: os.ModeSymlink,
}

// ReadDir lists dir in on-disk order, without "." and "..".
func (f *FS) readDir(ino volume.Ino) ([]volume.DirEntry, error) {
	d, err := f.dir(ino)
	if err != nil {
		return nil, err
	}
	return append([]volume.DirEntry(nil), d.ents...), nil
}

// Lookup finds name in dir (names are compared byte for byte).
func (f *FS) lookup(dirIno volume.Ino, name string) (volume.Attr, error) {
	d, err := f.dir(dirIno)
	if err != nil {
		return volume.Attr{}, err
	}
	i, ok := d.index[name]
	if !ok {
		return volume.Attr{}, fmt.Errorf("ext: %q not in directory %d: %w", name, dirIno, syscall.ENOENT)
	}
	return f.getAttr(d.ents[i].Ino)
}

func (f *FS) dir(ino volume.Ino) (*dir, error) {
	in, err := f.inodeOf(ino)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		return nil, fmt.Errorf("ext: inode %d is not a directory: %w", ino, syscall.ENOTDIR)
	}
	if d, ok := f.dirs.Get(in.ino); ok {
		return d, nil
	}
	if err := in.checkReadable(f); err != nil {
		return nil, err
	}
	ep := f.dirs.Stamp()
	d := &dir{index: map[string]int{}}
	if in.flags&flagInlineData != 0 {
		err = f.readInlineDir(in, d)
	} else {
		err = f.readBlockDir(in, d)
	}
	if err != nil {
		return nil, err
	}
	if err := f.fillTypes(d); err != nil {
		return nil, err
	}
	f.dirs.PutAt(ep, in.ino, d, d.cost())
	return d, nil
}

// readBlockDir reads a directory's blocks a run at a time. Hash-tree
// (dir_index) directories are read the same way: their interior blocks
// look like one empty entry covering the block, and their leaves are
// ordinary entry blocks.
func (f *FS) readBlockDir(in *inode, d *dir) error {
	bs := uint64(f.sb.blockSize)
	if in.size > maxDirSize {
		return fmt.Errorf("ext: directory %d is %d bytes, more than this reader takes: %w", in.ino, in.size, syscall.EIO)
	}
	nblocks := (in.size + bs - 1) / bs
	const chunkBlocks = 64
	var buf []byte
	for lblk := uint64(0); lblk < nblocks; {
		pblk, run, err := f.mapBlock(in, lblk)
		if err != nil {
			return err
		}
		run = min(run, nblocks-lblk, chunkBlocks)
		if pblk != 0 { // a hole in a directory holds no entries
			if buf == nil {
				buf = make([]byte, min(nblocks, chunkBlocks)*bs)
			}
			b := buf[:run*bs]
			if err := f.readDev(b, int64(pblk*bs)); err != nil {
				return fmt.Errorf("ext: directory %d: %w", in.ino, err)
			}
			for i := uint64(0); i < run; i++ {
				if err := f.parseDirents(in.ino, b[i*bs:(i+1)*bs], d); err != nil {
					return err
				}
			}
		}
		lblk += run
	}
	return nil
}

// readInlineDir reads a directory stored in the inode: the parent's inode
// number, then entries in the rest of i_block and in system.data.
func (f *FS) readInlineDir(in *inode, d *dir) error {
	data, err := f.inlineData(in)
	if err != nil {
		return err
	}
	if err := f.parseDirents(in.ino, data[4:len(in.block)], d); err != nil {
		return err
	}
	if rest := data[len(in.block):]; len(rest) > 0 {
		return f.parseDirents(in.ino, rest, d)
	}
	return nil
}

// parseDirents adds the entries of one block (or inline area) to d.
func (f *FS) parseDirents(dirIno uint32, b []byte, d *dir) error {
	le := binary.LittleEndian
	hasType := f.sb.incompat&incompatFiletype != 0
	for off := 0; off < len(b); {
		if off+8 > len(b) {
			return f.direntCorrupt(dirIno, off, "entry header past the block")
		}
		ino := le.Uint32(b[off:])
		recLen := int(le.Uint16(b[off+4:]))
		if f.sb.blockSize == 65536 && (recLen == 0 || recLen == 65535) {
			recLen = 65536 // a 64 KiB record does not fit 16 bits
		}
		nameLen := int(b[off+6])
		switch {
		case recLen < 8 || recLen%4 != 0 || recLen > len(b)-off:
			return f.direntCorrupt(dirIno, off, fmt.Sprintf("record length %d", recLen))
		case 8+nameLen > recLen:
			return f.direntCorrupt(dirIno, off, fmt.Sprintf("name of %d bytes in a %d-byte record", nameLen, recLen))
		}
		name := string(b[off+8 : off+8+nameLen])
		if ino != 0 && name != "." && name != ".." {
			if ino > f.sb.inodesCount {
				return f.direntCorrupt(dirIno, off, fmt.Sprintf("%q points to inode %d of %d", name, ino, f.sb.inodesCount))
			}
			var mode os.FileMode = 1 // unknown: resolved from the inode
			if t := b[off+7]; hasType && int(t) < len(direntTypes) && t != 0 {
				mode = direntTypes[t]
			}
			if _, dup := d.index[name]; !dup {
				d.index[name] = len(d.ents)
				d.ents = append(d.ents, volume.DirEntry{Name: name, Ino: volume.Ino(ino), Mode: mode})
			}
		}
		off += recLen
	}
	return nil
}

func (f *FS) direntCorrupt(dirIno uint32, off int, why string) error {
	return fmt.Errorf("ext: directory %d: entry at %d: %s: %w", dirIno, off, why, syscall.EIO)
}

// fillTypes takes the types the entries do not carry (ext2 without the
// filetype feature) from their inodes.
func (f *FS) fillTypes(d *dir) error {
	for i := range d.ents {
		e := &d.ents[i]
		if e.Mode != 1 {
			continue
		}
		e.Mode = 0
		if in, err := f.inode(uint32(e.Ino)); err == nil {
			e.Mode = typeMode(in.mode)
		}
	}
	return nil
}
