package ext

import (
	"fmt"
	"io"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// mapBlock maps a logical block of in through its extent tree or block
// map: the physical block (0 for a hole) and the length of the run.
func (f *FS) mapBlock(in *inode, lblk uint64) (uint64, uint64, error) {
	if in.flags&flagExtents != 0 {
		return f.extentMap(in, lblk)
	}
	return f.blockMap(in, lblk)
}

// ReadAt reads the content of a regular file.
func (f *FS) readAt(ino volume.Ino, p []byte, off int64) (int, error) {
	in, err := f.inodeOf(ino)
	if err != nil {
		return 0, err
	}
	switch {
	case in.isDir():
		return 0, fmt.Errorf("ext: inode %d is a directory: %w", ino, syscall.EISDIR)
	case !in.isReg():
		return 0, fmt.Errorf("ext: inode %d is not a regular file: %w", ino, syscall.EINVAL)
	case off < 0:
		return 0, fmt.Errorf("ext: negative offset %d: %w", off, syscall.EINVAL)
	}
	if err := in.checkReadable(f); err != nil {
		return 0, err
	}
	return f.readContent(in, p, off)
}

// readContent reads in's data (file, directory, slow symlink or xattr
// inode) at off, with io.EOF when p reaches past the end.
func (f *FS) readContent(in *inode, p []byte, off int64) (int, error) {
	size := int64(in.size & (1<<63 - 1))
	if off >= size {
		return 0, io.EOF
	}
	want := p
	if int64(len(p)) > size-off {
		want = p[:size-off]
	}
	var err error
	if in.flags&flagInlineData != 0 {
		err = f.readInline(in, want, off)
	} else {
		err = f.readBlocks(in, want, off)
	}
	if err != nil {
		return 0, err
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// readBlocks fills p from offset off, one contiguous run per device read
// and zeros for holes.
func (f *FS) readBlocks(in *inode, p []byte, off int64) error {
	bs := f.sb.blockSize
	for done := 0; done < len(p); {
		pos := off + int64(done)
		lblk, inBlock := uint64(pos/bs), pos%bs
		pblk, run, err := f.mapBlock(in, lblk)
		if err != nil {
			return err
		}
		left := int64(len(p) - done)
		n := left
		if run < uint64((left+inBlock+bs-1)/bs) {
			n = int64(run)*bs - inBlock
		}
		chunk := p[done : done+int(n)]
		if pblk == 0 {
			clear(chunk)
		} else if err := f.readDev(chunk, int64(pblk)*bs+inBlock); err != nil {
			return fmt.Errorf("ext: inode %d: %w", in.ino, err)
		}
		done += int(n)
	}
	return nil
}

// readInline reads a file whose data lives in the inode: the first 60
// bytes in i_block, the rest in the system.data extended attribute.
func (f *FS) readInline(in *inode, p []byte, off int64) error {
	data, err := f.inlineData(in)
	if err != nil {
		return err
	}
	if off+int64(len(p)) > int64(len(data)) {
		return fmt.Errorf("ext: inode %d: size %d but %d bytes of inline data: %w", in.ino, in.size, len(data), syscall.EIO)
	}
	copy(p, data[off:])
	return nil
}

// inlineData is all the inline data of in: i_block then system.data.
func (f *FS) inlineData(in *inode) ([]byte, error) {
	rest, err := f.inodeXattr(in, xattrIndexSystem, "data")
	if err != nil && err != errNoXattr {
		return nil, err
	}
	data := make([]byte, 0, len(in.block)+len(rest))
	return append(append(data, in.block[:]...), rest...), nil
}
