package ext

import (
	"encoding/binary"
)

const directBlocks = 12

// blockMap maps logical block lblk of an ext2/ext3-style inode through
// i_block: 12 direct pointers, then single, double and triple indirect
// blocks. Like extentMap it returns the physical block (0 for a hole) and
// how many blocks follow contiguously, looking no further than the
// pointer block it ends in.
func (f *FS) blockMap(in *inode, lblk uint64) (uint64, uint64, error) {
	le := binary.LittleEndian
	if lblk < directBlocks {
		return f.ptrRun(in, in.block[:directBlocks*4], int(lblk))
	}
	per := uint64(f.sb.blockSize / 4)
	lblk -= directBlocks
	span := uint64(1)
	for level := 1; level <= 3; level++ {
		span *= per
		if lblk < span {
			ptr := uint64(le.Uint32(in.block[(directBlocks+level-1)*4:]))
			return f.indirect(in, ptr, level, span, lblk)
		}
		lblk -= span
	}
	return 0, 1 << 32, nil // past what a block map can address: a hole
}

// indirect descends level pointer blocks from ptr, which covers span
// blocks of which lblk is the wanted one.
func (f *FS) indirect(in *inode, ptr uint64, level int, span, lblk uint64) (uint64, uint64, error) {
	per := uint64(f.sb.blockSize / 4)
	for ; ; level-- {
		if ptr == 0 {
			return 0, span - lblk, nil // the whole subtree is a hole
		}
		b, err := f.metaBlock(ptr)
		if err != nil {
			return 0, 0, err
		}
		span /= per
		idx := lblk / span
		if level == 1 {
			return f.ptrRun(in, b, int(idx))
		}
		ptr = uint64(binary.LittleEndian.Uint32(b[idx*4:]))
		lblk %= span
	}
}

// ptrRun reads pointer i of a pointer array and counts how many of the
// following pointers continue it: consecutive blocks, or zeros for a hole.
func (f *FS) ptrRun(in *inode, ptrs []byte, i int) (uint64, uint64, error) {
	le := binary.LittleEndian
	at := func(j int) uint64 { return uint64(le.Uint32(ptrs[j*4:])) }
	p := at(i)
	n := uint64(1)
	for j := i + 1; j < len(ptrs)/4; j++ {
		q := at(j)
		if (p == 0 && q != 0) || (p != 0 && q != p+n) {
			break
		}
		n++
	}
	if p == 0 {
		return 0, n, nil
	}
	return f.checkRun(in, p, n)
}
