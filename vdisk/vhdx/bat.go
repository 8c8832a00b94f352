package vhdx

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/offvm/offvm/vdisk"
)

// Payload and sector bitmap block states ([MS-VHDX] 2.5.1.1, 2.5.1.2).
const (
	stateNotPresent       = 0
	stateUndefined        = 1
	stateZero             = 2
	stateUnmapped         = 3
	stateFullyPresent     = 6
	statePartiallyPresent = 7

	sbStatePresent = 6

	sectorBitmapSize = 1 * mib
	maxBATBytes      = 1 << 30 // a 64 TiB disk with 1 MiB blocks needs 512 MiB
)

// batEntry is one 64-bit BAT entry: state in bits 0-2, file offset in
// MiB in bits 20-63.
type batEntry uint64

func (e batEntry) state() int    { return int(e & 7) }
func (e batEntry) offset() int64 { return int64(e>>20) * mib }
func makeEntry(state int, off int64) batEntry {
	return batEntry(uint64(off/mib)<<20 | uint64(state))
}

// geometry is the arithmetic of [MS-VHDX] 2.5: payload blocks with one
// sector bitmap entry after every chunkRatio of them.
type geometry struct {
	blockSize   int64
	chunkRatio  int64
	dataBlocks  int64
	batEntries  int64
	sectorSize  int64
	virtualSize int64
	diff        bool
}

func newGeometry(m *metadata) geometry {
	g := geometry{blockSize: int64(m.blockSize), sectorSize: int64(m.logicalSector), virtualSize: m.virtualSize, diff: m.hasParent}
	g.chunkRatio = (1 << 23) * g.sectorSize / g.blockSize
	g.dataBlocks = (m.virtualSize + g.blockSize - 1) / g.blockSize
	sbBlocks := (g.dataBlocks + g.chunkRatio - 1) / g.chunkRatio
	if m.hasParent {
		g.batEntries = sbBlocks * (g.chunkRatio + 1)
	} else {
		g.batEntries = g.dataBlocks + (g.dataBlocks-1)/g.chunkRatio
	}
	return g
}

// payloadIndex is the BAT index of payload block b.
func (g geometry) payloadIndex(b int64) int64 { return b + b/g.chunkRatio }

// bitmapIndex is the BAT index of the sector bitmap covering block b.
func (g geometry) bitmapIndex(b int64) int64 {
	return (b/g.chunkRatio)*(g.chunkRatio+1) + g.chunkRatio
}

// readBAT loads the entries the geometry needs and checks that every
// allocated block lies inside the file.
func readBAT(f vdisk.File, r region, g geometry, fileSize int64, diff bool) ([]batEntry, error) {
	name := f.Name()
	n := g.batEntries
	if n*8 > r.length {
		return nil, fmt.Errorf("vhdx %s: BAT region of %d bytes cannot hold %d entries: %w", name, r.length, n, vdisk.ErrCorrupt)
	}
	if n*8 > maxBATBytes {
		return nil, fmt.Errorf("vhdx %s: BAT of %d entries is too large: %w", name, n, vdisk.ErrUnsupported)
	}
	raw := make([]byte, n*8)
	if _, err := f.ReadAt(raw, r.offset); err != nil {
		return nil, fmt.Errorf("vhdx %s: reading BAT: %w", name, err)
	}
	bat := make([]batEntry, n)
	for i := range bat {
		bat[i] = batEntry(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	for i, e := range bat {
		if err := g.checkEntry(int64(i), e, fileSize, diff); err != "" {
			return nil, fmt.Errorf("vhdx %s: BAT entry %d: %s: %w", name, i, err, vdisk.ErrCorrupt)
		}
	}
	return bat, nil
}

func (g geometry) checkEntry(i int64, e batEntry, fileSize int64, diff bool) string {
	isBitmap := (i+1)%(g.chunkRatio+1) == 0
	st := e.state()
	var need int64
	switch {
	case isBitmap && !diff:
		return "" // unused in images without a parent
	case isBitmap && st == sbStatePresent:
		need = sectorBitmapSize
	case isBitmap && st == stateNotPresent:
		return ""
	case isBitmap:
		return fmt.Sprintf("unknown sector bitmap state %d", st)
	case st == stateFullyPresent || (st == statePartiallyPresent && diff):
		b := i - i/(g.chunkRatio+1)
		need = min(g.blockSize, g.virtualSize-b*g.blockSize)
	case st == statePartiallyPresent:
		return "partially present block in an image without a parent"
	case st <= stateUnmapped:
		return ""
	default:
		return fmt.Sprintf("unknown payload block state %d", st)
	}
	if uint64(e>>20) > uint64(fileSize)/mib {
		return fmt.Sprintf("block at %d MiB lies past the end of the file (size %d)", uint64(e>>20), fileSize)
	}
	off := e.offset()
	if off < mib || off+need > fileSize {
		return fmt.Sprintf("block at %d+%d lies outside the file (size %d)", off, need, fileSize)
	}
	return ""
}

// checkOverlaps refuses a file whose blocks overlap each other or the
// log, BAT or metadata regions: writing into such a block would damage
// what else lives there. Only writable opens need it.
func checkOverlaps(name string, bat []batEntry, g geometry, fixed []region) error {
	type span struct {
		region
		what string
	}
	var spans []span
	for _, r := range fixed {
		if r.length > 0 {
			spans = append(spans, span{r, "a metadata region"})
		}
	}
	for i, e := range bat {
		isBitmap := (int64(i)+1)%(g.chunkRatio+1) == 0
		switch {
		case isBitmap && e.state() == sbStatePresent && g.diff:
			spans = append(spans, span{region{e.offset(), sectorBitmapSize}, fmt.Sprintf("BAT entry %d", i)})
		case !isBitmap && (e.state() == stateFullyPresent || e.state() == statePartiallyPresent):
			b := int64(i) - int64(i)/(g.chunkRatio+1)
			spans = append(spans, span{region{e.offset(), min(g.blockSize, g.virtualSize-b*g.blockSize)}, fmt.Sprintf("BAT entry %d", i)})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(spans); i++ {
		p, s := spans[i-1], spans[i]
		if p.offset+p.length > s.offset {
			return fmt.Errorf("vhdx %s: %s at %d overlaps %s at %d: %w", name, s.what, s.offset, p.what, p.offset, vdisk.ErrCorrupt)
		}
	}
	return nil
}
