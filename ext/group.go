package ext

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// bgInodeUninit marks a group whose inode table was never initialised:
// all its inodes are free, and the table may hold stale bytes.
const bgInodeUninit = 0x1

// group is what the engine needs of a block group descriptor: where its
// inodes are and how many of them are initialised.
type group struct {
	inodeTable uint64
	// usedInodes is how many leading inodes of the table may be in use;
	// with uninit_bg or metadata_csum the rest is unused and possibly
	// never written.
	usedInodes uint32
	bad        error // the descriptor points outside the file system
}

// descBlock is the block holding the descriptor block number nr (the
// descriptors of groups nr*perBlock ...). Without meta_bg the table
// follows the superblock; with meta_bg, from s_first_meta_bg on, each
// meta group keeps its descriptor block in its own first group, after
// that group's superblock backup if it has one.
func (s *superblock) descBlock(nr uint64) uint64 {
	sbBlock := uint64(superblockOffset / s.blockSize) // 1 with 1 KiB blocks, else 0
	if s.incompat&incompatMetaBG == 0 || nr < uint64(s.raw.FirstMetaBG) {
		return sbBlock + nr + 1
	}
	g := nr * uint64(s.blockSize/s.descSize)
	first := s.firstDataBlock + g*uint64(s.blocksPerGroup)
	if s.hasSuper(g) {
		first++
	}
	if s.blockSize == 1024 && nr == 0 && s.firstDataBlock == 0 {
		first++ // bigalloc with 1 KiB blocks: group 0 starts at block 0
	}
	return first
}

// readGroups reads every group descriptor, one descriptor block at a time.
func (f *FS) readGroups() error {
	s := f.sb
	perBlock := uint64(s.blockSize / s.descSize)
	itableBlocks := (uint64(s.inodesPerGroup)*uint64(s.inodeSize) + uint64(s.blockSize) - 1) / uint64(s.blockSize)
	csum := s.roCompat&(roCompatGdtCsum|roCompatMetadataCsum) != 0
	f.groups = make([]group, s.groups)
	buf := make([]byte, s.blockSize)
	for nr := uint64(0); nr*perBlock < uint64(s.groups); nr++ {
		blk := s.descBlock(nr)
		if blk >= s.blocksCount {
			return fmt.Errorf("ext: group descriptor block %d is past the end (%d blocks): %w", blk, s.blocksCount, syscall.EIO)
		}
		if err := f.readDev(buf, int64(blk)*s.blockSize); err != nil {
			return fmt.Errorf("ext: group descriptors: %w", err)
		}
		for i := uint64(0); i < perBlock && nr*perBlock+i < uint64(s.groups); i++ {
			g := nr*perBlock + i
			f.groups[g] = decodeGroup(s, buf[i*uint64(s.descSize):], itableBlocks, csum, g)
		}
	}
	return nil
}

func decodeGroup(s *superblock, d []byte, itableBlocks uint64, csum bool, g uint64) group {
	le := binary.LittleEndian
	gr := group{inodeTable: uint64(le.Uint32(d[8:])), usedInodes: s.inodesPerGroup}
	flags := le.Uint16(d[18:])
	unused := uint32(le.Uint16(d[28:]))
	if s.has64bit() {
		gr.inodeTable |= uint64(le.Uint32(d[40:])) << 32
		unused |= uint32(le.Uint16(d[50:])) << 16
	}
	if csum {
		switch {
		case flags&bgInodeUninit != 0:
			gr.usedInodes = 0
		case unused <= s.inodesPerGroup:
			gr.usedInodes = s.inodesPerGroup - unused
		}
	}
	if gr.inodeTable == 0 || gr.inodeTable >= s.blocksCount || s.blocksCount-gr.inodeTable < itableBlocks {
		gr.bad = fmt.Errorf("ext: group %d: inode table at block %d is outside the %d blocks: %w", g, gr.inodeTable, s.blocksCount, syscall.EIO)
	}
	return gr
}
