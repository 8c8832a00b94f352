package ext

import (
	"encoding/binary"
	"fmt"
	"sort"
	"syscall"
)

const (
	extentMagic    = 0xF30A
	maxExtentDepth = 5 // the kernel's own limit
	// uninitLen: an ee_len above it marks an allocated but unwritten
	// extent (fallocate), which reads as zeros.
	uninitLen = 32768
)

// extentHeader is the 12-byte header of every extent tree node.
type extentHeader struct {
	magic, entries, max, depth uint16
}

func parseExtentNode(b []byte, ino uint32) (extentHeader, error) {
	le := binary.LittleEndian
	h := extentHeader{le.Uint16(b), le.Uint16(b[2:]), le.Uint16(b[4:]), le.Uint16(b[6:])}
	switch {
	case h.magic != extentMagic:
		return h, fmt.Errorf("ext: inode %d: extent node magic %#x: %w", ino, h.magic, syscall.EIO)
	case h.entries > h.max || 12+12*int(h.entries) > len(b):
		return h, fmt.Errorf("ext: inode %d: extent node with %d entries (max %d) in %d bytes: %w", ino, h.entries, h.max, len(b), syscall.EIO)
	case h.depth > maxExtentDepth:
		return h, fmt.Errorf("ext: inode %d: extent tree depth %d: %w", ino, h.depth, syscall.EIO)
	}
	return h, nil
}

// extentMap maps logical block lblk of an extent-mapped inode to a
// physical block and the number of blocks that follow contiguously. A
// physical block of 0 is a hole (or an unwritten extent): zeros for that
// many blocks. It descends from the root in i_block; the depth must fall
// by one at each level, so a loop in the tree ends at the depth limit.
func (f *FS) extentMap(in *inode, lblk uint64) (pblk, n uint64, err error) {
	le := binary.LittleEndian
	if lblk >= 1<<32 {
		return 0, 1 << 32, nil // past 32-bit logical blocks: only a corrupt size gets here
	}
	node := in.block[:]
	end := uint64(1) << 32 // first logical block past this subtree
	want := -1             // the depth this node must have (-1: root, any)
	for {
		h, err := parseExtentNode(node, in.ino)
		if err != nil {
			return 0, 0, err
		}
		if want >= 0 && int(h.depth) != want {
			return 0, 0, fmt.Errorf("ext: inode %d: extent node at depth %d, expected %d: %w", in.ino, h.depth, want, syscall.EIO)
		}
		cnt := int(h.entries)
		start := func(i int) uint64 { return uint64(le.Uint32(node[12+12*i:])) }
		// i is the last entry starting at or before lblk.
		i := sort.Search(cnt, func(i int) bool { return start(i) > lblk }) - 1
		if i+1 < cnt {
			end = min(end, start(i+1))
		}
		if end <= lblk {
			return 0, 0, fmt.Errorf("ext: inode %d: extent entries out of order: %w", in.ino, syscall.EIO)
		}
		if h.depth == 0 {
			return f.extentLeaf(in, node, i, lblk, end)
		}
		if i < 0 {
			return 0, end - lblk, nil // before the first index: a hole
		}
		e := node[12+12*i:]
		child := uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32
		if node, err = f.metaBlock(child); err != nil {
			return 0, 0, fmt.Errorf("ext: inode %d: extent index: %w", in.ino, err)
		}
		want = int(h.depth) - 1
	}
}

// extentLeaf resolves lblk in a leaf whose entry i starts at or before it.
func (f *FS) extentLeaf(in *inode, node []byte, i int, lblk, end uint64) (uint64, uint64, error) {
	if i < 0 {
		return 0, end - lblk, nil
	}
	le := binary.LittleEndian
	e := node[12+12*i:]
	first := uint64(le.Uint32(e))
	length := uint64(le.Uint16(e[4:]))
	unwritten := length > uninitLen
	if unwritten {
		length -= uninitLen
	}
	if lblk >= first+length {
		return 0, end - lblk, nil // a hole between two extents
	}
	n := min(first+length, end) - lblk
	if unwritten {
		return 0, n, nil
	}
	phys := uint64(le.Uint32(e[8:])) | uint64(le.Uint16(e[6:]))<<32
	return f.checkRun(in, phys+(lblk-first), n)
}

// checkRun refuses a run that starts outside the file system and trims
// one that ends outside it.
func (f *FS) checkRun(in *inode, pblk, n uint64) (uint64, uint64, error) {
	if pblk == 0 || pblk >= f.sb.blocksCount {
		return 0, 0, fmt.Errorf("ext: inode %d: data block %d is outside the %d blocks: %w", in.ino, pblk, f.sb.blocksCount, syscall.EIO)
	}
	return pblk, min(n, f.sb.blocksCount-pblk), nil
}
