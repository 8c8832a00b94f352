package fat

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/offvm/offvm/internal/devio"
)

// fatTable is the in-use FAT held in memory (only the sectors that map
// clusters), with the sectors changed since the last flush.
type fatTable struct {
	kind  int
	bps   int64
	buf   []byte
	max   uint32 // highest valid cluster number
	dirty map[int64]bool
}

func (t *fatTable) eoc() uint32 {
	switch t.kind {
	case 12:
		return 0xfff
	case 16:
		return 0xffff
	}
	return 0x0fffffff
}

// isEnd reports an end-of-chain mark (>= xFF8 in every FAT width).
func (t *fatTable) isEnd(v uint32) bool { return v >= t.eoc()&^7 }

func (t *fatTable) get(c uint32) uint32 {
	le := binary.LittleEndian
	switch t.kind {
	case 12:
		off := int(c) + int(c)/2
		w := uint32(le.Uint16(t.buf[off:]))
		if c&1 != 0 {
			return w >> 4
		}
		return w & 0xfff
	case 16:
		return uint32(le.Uint16(t.buf[2*int(c):]))
	}
	return le.Uint32(t.buf[4*int(c):]) & 0x0fffffff
}

func (t *fatTable) set(c, v uint32) {
	le := binary.LittleEndian
	var off, n int
	switch t.kind {
	case 12:
		off, n = int(c)+int(c)/2, 2
		w := le.Uint16(t.buf[off:])
		if c&1 != 0 {
			w = w&0x000f | uint16(v<<4)
		} else {
			w = w&0xf000 | uint16(v&0xfff)
		}
		le.PutUint16(t.buf[off:], w)
	case 16:
		off, n = 2*int(c), 2
		le.PutUint16(t.buf[off:], uint16(v))
	default:
		// The top four bits are reserved and must be kept.
		off, n = 4*int(c), 4
		old := le.Uint32(t.buf[off:])
		le.PutUint32(t.buf[off:], old&0xf0000000|v&0x0fffffff)
	}
	t.dirty[int64(off)/t.bps] = true
	t.dirty[int64(off+n-1)/t.bps] = true
}

// fatBytes is how many bytes of a FAT map clusters 0..clusters+1, rounded
// up to whole sectors and never beyond the FAT itself.
func fatBytes(g *geometry) int64 {
	n := (int64(g.clusters)+2)*int64(g.kind)/8 + 2
	n = (n + g.bps - 1) / g.bps * g.bps
	return min(n, g.fatSize)
}

func (v *Volume) loadFAT() error {
	g := &v.g
	t := &fatTable{kind: g.kind, bps: g.bps, max: g.clusters + 1, dirty: map[int64]bool{}}
	t.buf = make([]byte, fatBytes(g))
	first := max(g.activeFAT, 0)
	if _, err := v.dev.ReadAt(t.buf, g.fatStart+int64(first)*g.fatSize); err != nil {
		return fmt.Errorf("fat: reading FAT: %w", syscall.EIO)
	}
	v.fat = t
	return nil
}

// chain lists the clusters of the chain starting at start. A chain that
// leaves the volume, reaches a free or bad cluster, or loops is corrupt.
func (v *Volume) chain(start uint32) ([]uint32, error) {
	var out []uint32
	c := start
	for {
		if !v.g.valid(c) {
			return out, corrupt("cluster chain from %d reaches cluster %d", start, c)
		}
		if uint32(len(out)) > v.g.clusters {
			return out, corrupt("cluster chain from %d loops", start)
		}
		out = append(out, c)
		next := v.fat.get(c)
		if v.fat.isEnd(next) {
			return out, nil
		}
		c = next
	}
}

// flushFAT writes the changed FAT sectors to every FAT copy (or only the
// active one when FAT32 mirroring is off).
func (v *Volume) flushFAT() error {
	t := v.fat
	for s := range t.dirty {
		sec := t.buf[s*t.bps : (s+1)*t.bps]
		for i := 0; i < v.g.numFATs; i++ {
			if v.g.activeFAT >= 0 && i != v.g.activeFAT {
				continue
			}
			off := v.g.fatStart + int64(i)*v.g.fatSize + s*t.bps
			if err := devio.Write(v.dev, sec, off); err != nil {
				return fmt.Errorf("fat: writing FAT %d sector %d: %w", i, s, err)
			}
		}
		delete(t.dirty, s)
	}
	return nil
}
