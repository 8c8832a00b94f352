package ext

import (
	"fmt"
	"syscall"

	"github.com/offvm/offvm/internal/names"
)

const flagIndex = 0x1000 // EXT4_INDEX_FL: a hash-tree directory

// File types in directory entries.
const (
	ftReg     = 1
	ftDir     = 2
	ftSymlink = 7
)

// checkName refuses what no POSIX directory can hold (internal/names).
func checkName(name string) error {
	if err := names.POSIX(name); err != nil {
		return fmt.Errorf("ext: %w", err)
	}
	return nil
}

// usable is how much of a directory block entries may cover: all of it,
// less the 12-byte checksum tail with metadata_csum.
func (f *FS) usable() int {
	if f.w.csum {
		return int(f.sb.blockSize) - 12
	}
	return int(f.sb.blockSize)
}

// dirCsum writes the checksum tail of a directory leaf block.
func (f *FS) dirCsum(r *rino, b []byte) {
	if !f.w.csum {
		return
	}
	n := len(b)
	clear(b[n-12:])
	le.PutUint16(b[n-8:], 12)
	b[n-5] = 0xDE
	le.PutUint32(b[n-4:], crc32cRaw(f.w.inodeSeed(r.ino, r.gen()), b[:n-12]))
}

// dirForWrite loads a directory inode and, when it is hash-indexed,
// turns it into a linear one first: e2fsck accepts a linear directory
// of any size, and keeping the index right is left to the kernel (it
// rebuilds none, but lookups in a linear directory stay correct).
func (f *FS) dirForWrite(ino uint32) (*rino, error) {
	r, err := f.loadRaw(ino)
	if err != nil {
		return nil, err
	}
	switch {
	case !r.isDir():
		return nil, fmt.Errorf("ext: inode %d is not a directory: %w", ino, syscall.ENOTDIR)
	case r.flags()&(flagEncrypt|flagInlineData|0x40000000 /* casefold */) != 0:
		return nil, fmt.Errorf("ext: directory %d is encrypted, inline or casefolded; offvm does not write it: %w", ino, syscall.EROFS)
	case !r.hasExtents():
		return nil, fmt.Errorf("ext: directory %d: ext2/ext3 block-mapped files are read-only in offvm: %w", ino, syscall.EROFS)
	}
	if r.flags()&flagIndex != 0 {
		if err := f.unindex(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// unindex rewrites the index blocks of an htree directory as empty
// leaf blocks (the root keeps "." and "..") and clears the flag.
func (f *FS) unindex(r *rino) error {
	bs := int(f.sb.blockSize)
	err := f.eachDirBlock(r, func(lblk uint32, b []byte) (bool, bool, error) {
		first, rec := le.Uint32(b), int(le.Uint16(b[4:]))
		switch {
		case lblk == 0:
			if rec != 12 || b[6] != 1 || le.Uint16(b[12+4:]) < 12 {
				return false, false, fmt.Errorf("ext: directory %d: htree root without '.' and '..': %w", r.ino, syscall.EIO)
			}
			clear(b[24:])
			le.PutUint16(b[16:], uint16(f.usable()-12))
		case first == 0 && (rec == bs || rec == 0 && bs == 65536):
			clear(b)
			le.PutUint16(b[4:], uint16(f.usable()))
		default:
			return false, false, nil
		}
		f.dirCsum(r, b)
		return true, false, nil
	})
	if err != nil {
		return err
	}
	r.setFlags(r.flags() &^ flagIndex)
	return f.storeRaw(r)
}

// eachDirBlock calls fn with each block of directory r; a block fn marks
// dirty is written back (fn set its checksum).
func (f *FS) eachDirBlock(r *rino, fn func(lblk uint32, b []byte) (dirty, stop bool, err error)) error {
	exts, _, err := f.loadExtents(r)
	if err != nil {
		return err
	}
	if r.size() > maxDirSize {
		return fmt.Errorf("ext: directory %d is %d bytes, more than offvm changes: %w", r.ino, r.size(), syscall.EIO)
	}
	nblk := uint32(r.size() / uint64(f.sb.blockSize))
	// Walk the extents, not every logical block: a damaged size must not
	// make a long loop over holes.
	for _, e := range mergeExtents(exts) {
		if e.unwritten {
			continue // reads as zeros: no entries
		}
		for i := uint32(0); i < e.n && e.lblk+i < nblk; i++ {
			b, err := f.readBlock(e.pblk + uint64(i))
			if err != nil {
				return err
			}
			dirty, stop, err := fn(e.lblk+i, b)
			if err != nil {
				return err
			}
			if dirty {
				if err := f.writeBlock(e.pblk+uint64(i), b); err != nil {
					return err
				}
			}
			if stop {
				return nil
			}
		}
	}
	return nil
}

// dirent is one entry found in a block.
type dirent struct {
	off, rec, nameLen int
	ino               uint32
	ftype             byte
}

// entries lists a block's entries up to the usable end, checking each.
func (f *FS) entries(r *rino, b []byte) ([]dirent, error) {
	var out []dirent
	end := f.usable()
	for off := 0; off < end; {
		if off+8 > end {
			return nil, f.direntCorrupt(r.ino, off, "entry header past the block")
		}
		d := dirent{off: off, rec: int(le.Uint16(b[off+4:])), nameLen: int(b[off+6]), ino: le.Uint32(b[off:]), ftype: b[off+7]}
		if d.rec == 0 && len(b) == 65536 {
			d.rec = 65536
		}
		if d.rec < 8 || d.rec%4 != 0 || off+d.rec > end || 8+d.nameLen > d.rec {
			return nil, f.direntCorrupt(r.ino, off, fmt.Sprintf("record length %d", d.rec))
		}
		out = append(out, d)
		off += d.rec
	}
	return out, nil
}

// findEntry finds name in directory r.
func (f *FS) findEntry(r *rino, name string) (uint32, byte, bool, error) {
	var ino uint32
	var ft byte
	err := f.eachDirBlock(r, func(_ uint32, b []byte) (bool, bool, error) {
		ents, err := f.entries(r, b)
		if err != nil {
			return false, false, err
		}
		for _, d := range ents {
			if d.ino != 0 && string(b[d.off+8:d.off+8+d.nameLen]) == name {
				ino, ft = d.ino, d.ftype
				return false, true, nil
			}
		}
		return false, false, nil
	})
	return ino, ft, ino != 0, err
}

func recLenFor(nameLen int) int { return (8 + nameLen + 3) &^ 3 }

func putDirent(b []byte, ino uint32, rec int, name string, ft byte) {
	le.PutUint32(b, ino)
	le.PutUint16(b[4:], uint16(rec))
	b[6] = byte(len(name))
	b[7] = ft
	copy(b[8:], name)
}

// addEntry adds name → ino to directory r, in the first block with
// room, else in a new block at the end. r is written back.
func (f *FS) addEntry(r *rino, name string, ino uint32, ft byte) error {
	need := recLenFor(len(name))
	done := false
	err := f.eachDirBlock(r, func(_ uint32, b []byte) (bool, bool, error) {
		ents, err := f.entries(r, b)
		if err != nil {
			return false, false, err
		}
		for _, d := range ents {
			used := 0
			if d.ino != 0 {
				used = recLenFor(d.nameLen)
			}
			if d.rec-used < need {
				continue
			}
			if used > 0 {
				le.PutUint16(b[d.off+4:], uint16(used))
				putDirent(b[d.off+used:], ino, d.rec-used, name, ft)
			} else {
				putDirent(b[d.off:], ino, d.rec, name, ft)
			}
			f.dirCsum(r, b)
			done = true
			return true, true, nil
		}
		return false, false, nil
	})
	if err != nil || done {
		if err == nil {
			err = f.storeRaw(r)
		}
		return err
	}
	return f.appendDirBlock(r, func(b []byte) { putDirent(b, ino, f.usable(), name, ft) })
}

// appendDirBlock adds a block to directory r, filled by fill.
func (f *FS) appendDirBlock(r *rino, fill func(b []byte)) error {
	bs := f.sb.blockSize
	lblk := uint32(r.size() / uint64(bs))
	if err := f.mapRange(r, lblk, lblk+1, nil); err != nil {
		return err
	}
	exts, _, err := f.loadExtents(r)
	if err != nil {
		return err
	}
	b := make([]byte, bs)
	fill(b)
	f.dirCsum(r, b)
	if err := f.writeBlock(lookupExtent(exts, lblk), b); err != nil {
		return err
	}
	r.setSize(uint64(lblk+1) * uint64(bs))
	return f.storeRaw(r)
}

// removeEntry takes name out of directory r: the previous entry in the
// block absorbs its record, or, first in its block, it is marked unused.
func (f *FS) removeEntry(r *rino, name string) error {
	return f.editEntry(r, name, func(b []byte, ents []dirent, i int) {
		d := ents[i]
		if i > 0 {
			p := ents[i-1]
			le.PutUint16(b[p.off+4:], uint16(p.rec+d.rec))
			clear(b[d.off : d.off+d.rec])
		} else {
			le.PutUint32(b[d.off:], 0)
		}
	})
}

// setEntryIno points an existing entry at another inode (rename over).
func (f *FS) setEntryIno(r *rino, name string, ino uint32, ft byte) error {
	return f.editEntry(r, name, func(b []byte, ents []dirent, i int) {
		le.PutUint32(b[ents[i].off:], ino)
		b[ents[i].off+7] = ft
	})
}

// editEntry finds name's entry in directory r, lets edit change its
// block (ents are the block's entries, i the one named), and writes the
// block back with its checksum; ENOENT when name is not there.
func (f *FS) editEntry(r *rino, name string, edit func(b []byte, ents []dirent, i int)) error {
	found := false
	err := f.eachDirBlock(r, func(_ uint32, b []byte) (bool, bool, error) {
		ents, err := f.entries(r, b)
		if err != nil {
			return false, false, err
		}
		for i, d := range ents {
			if d.ino == 0 || string(b[d.off+8:d.off+8+d.nameLen]) != name {
				continue
			}
			edit(b, ents, i)
			f.dirCsum(r, b)
			found = true
			return true, true, nil
		}
		return false, false, nil
	})
	if err == nil && !found {
		err = fmt.Errorf("ext: %q not in directory %d: %w", name, r.ino, syscall.ENOENT)
	}
	return err
}

// isEmptyDir tells whether r holds nothing but "." and "..".
func (f *FS) isEmptyDir(r *rino) (bool, error) {
	empty := true
	err := f.eachDirBlock(r, func(_ uint32, b []byte) (bool, bool, error) {
		ents, err := f.entries(r, b)
		if err != nil {
			return false, false, err
		}
		for _, d := range ents {
			n := string(b[d.off+8 : d.off+8+d.nameLen])
			if d.ino != 0 && n != "." && n != ".." {
				empty = false
				return false, true, nil
			}
		}
		return false, false, nil
	})
	return empty, err
}

// setDotDot points the ".." of directory r at parent.
func (f *FS) setDotDot(r *rino, parent uint32) error {
	return f.eachDirBlock(r, func(lblk uint32, b []byte) (bool, bool, error) {
		if lblk != 0 || le.Uint16(b[4:]) != 12 || b[12+6] != 2 || string(b[12+8:12+10]) != ".." {
			return false, true, fmt.Errorf("ext: directory %d: no '..' entry at its start: %w", r.ino, syscall.EIO)
		}
		le.PutUint32(b[12:], parent)
		f.dirCsum(r, b)
		return true, true, nil
	})
}

func ftypeOf(mode uint16) byte {
	switch mode & sIFMT {
	case sIFDIR:
		return ftDir
	case sIFLNK:
		return ftSymlink
	case sIFCHR:
		return 3
	case sIFBLK:
		return 4
	case sIFIFO:
		return 5
	case sIFSOCK:
		return 6
	}
	return ftReg
}
