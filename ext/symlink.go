package ext

import (
	"fmt"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// maxSymlinkSize is the longest target read (the kernel stops at one
// block; 64 KiB is the largest block).
const maxSymlinkSize = 64 << 10

// Readlink returns a symbolic link's target. Short targets (under 60
// bytes) live in i_block ("fast" links); longer ones in a data block,
// and with inline_data in the inode.
func (f *FS) readlink(ino volume.Ino) (string, error) {
	in, err := f.inodeOf(ino)
	if err != nil {
		return "", err
	}
	if !in.isSymlink() {
		return "", fmt.Errorf("ext: inode %d is not a symbolic link: %w", ino, syscall.EINVAL)
	}
	if err := in.checkReadable(f); err != nil {
		return "", err
	}
	if in.size > maxSymlinkSize {
		return "", fmt.Errorf("ext: symbolic link %d claims %d bytes: %w", ino, in.size, syscall.EIO)
	}
	if f.isFastSymlink(in) {
		return string(in.block[:in.size]), nil
	}
	buf := make([]byte, in.size)
	if _, err := f.readContent(in, buf, 0); err != nil && len(buf) > 0 {
		return "", err
	}
	return string(buf), nil
}

// isFastSymlink: the target is in i_block when it fits and no data block
// is allocated (old kernels made slow links of short targets too, so the
// size alone does not tell; the block count, less the xattr block's, does).
func (f *FS) isFastSymlink(in *inode) bool {
	if in.flags&flagInlineData != 0 || in.size >= uint64(len(in.block)) {
		return false
	}
	data := in.blocks
	if in.fileACL != 0 {
		data -= f.sb.blockSize / 512
	}
	return data <= 0
}
