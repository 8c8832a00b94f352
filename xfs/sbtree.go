package xfs

import (
	"fmt"
	"syscall"
)

// Short-form (per-AG) B+trees: the free-space trees by block and by
// size, and the inode trees. The writer reads such a tree whole (its
// leaf records and every block it holds) and, when an operation changed
// the records, lays the tree out again from them into the blocks it is
// given: records spread evenly so that every block but the root is at
// least half full, siblings linked level by level, keys the first
// record's leading bytes, as the kernel's own keys are.

const (
	sbtMaxLevels = 9
	nullAGBlock  = ^uint32(0)
)

// sbtKind is what one tree's blocks hold. A tree of overlapping
// intervals (the rmapbt) keeps in its nodes a low and a high key per
// child, made from records by key and high; other trees' keys are the
// records' leading bytes.
type sbtKind struct {
	magic          string
	recLen, keyLen int
	owner          uint64 // its blocks' owner in the reverse map
	key, high      func(rec []byte) []byte
	less           func(a, b []byte) bool // key order, for the high keys' maximum
}

// keyArea is the bytes of node keys per child.
func (k sbtKind) keyArea() int {
	if k.high != nil {
		return 2 * k.keyLen
	}
	return k.keyLen
}

func (k sbtKind) lowKey(rec []byte) []byte {
	if k.key != nil {
		return k.key(rec)
	}
	return rec[:k.keyLen]
}

var (
	kindBno  = sbtKind{magic: "AB3B", recLen: 8, keyLen: 8, owner: ownAG}
	kindCnt  = sbtKind{magic: "AB3C", recLen: 8, keyLen: 8, owner: ownAG}
	kindIno  = sbtKind{magic: "IAB3", recLen: 16, keyLen: 4, owner: ownInobt}
	kindFino = sbtKind{magic: "FIB3", recLen: 16, keyLen: 4, owner: ownInobt}
)

func (f *FS) leafMax(k sbtKind) int { return (int(f.sb.blockSize) - f.sbtHdr()) / k.recLen }
func (f *FS) nodeMax(k sbtKind) int { return (int(f.sb.blockSize) - f.sbtHdr()) / (k.keyArea() + 4) }

// sbTree is one tree as read: its records in key order and its blocks.
type sbTree struct {
	recs   [][]byte
	blocks []uint32
	uuid   []byte // from the root, for the blocks laid out again
}

// readSbt reads the tree of kind k rooted at root with levels levels.
func (f *FS) readSbt(ag, root uint32, levels int, k sbtKind) (*sbTree, error) {
	if levels < 1 || levels > sbtMaxLevels {
		return nil, fmt.Errorf("xfs: AG %d: %s tree of %d levels: %w", ag, k.magic, levels, ErrCorrupt)
	}
	tr := &sbTree{}
	cur := []uint32{root}
	hdr := f.sbtHdr()
	for l := levels - 1; l >= 0; l-- {
		var next []uint32
		for _, bno := range cur {
			if len(tr.blocks) >= int(f.sb.agBlocks) {
				return nil, fmt.Errorf("xfs: AG %d: %s tree holds more blocks than the AG: %w", ag, k.magic, ErrCorrupt)
			}
			b, err := f.sbtBlock(ag, bno, l, k)
			if err != nil {
				return nil, err
			}
			tr.blocks = append(tr.blocks, bno)
			if tr.uuid == nil && f.v5() {
				tr.uuid = append([]byte(nil), b[32:48]...)
			}
			n := int(be.Uint16(b[6:]))
			if l == 0 {
				for i := 0; i < n; i++ {
					tr.recs = append(tr.recs, append([]byte(nil), b[hdr+i*k.recLen:hdr+(i+1)*k.recLen]...))
				}
				continue
			}
			pm := f.nodeMax(k)
			for i := 0; i < n; i++ {
				next = append(next, be.Uint32(b[hdr+pm*k.keyArea()+i*4:]))
			}
		}
		cur = next
	}
	return tr, nil
}

// sbtBlock reads and checks one block of a tree at the given level.
func (f *FS) sbtBlock(ag, bno uint32, level int, k sbtKind) ([]byte, error) {
	if uint64(bno) >= f.sb.agBlocks {
		return nil, fmt.Errorf("xfs: AG %d: %s block %d outside the AG: %w", ag, k.magic, bno, ErrCorrupt)
	}
	b := make([]byte, f.sb.blockSize)
	if _, err := f.dev.ReadAt(b, f.agOff(ag, bno)); err != nil {
		return nil, fmt.Errorf("xfs: reading AG %d block %d: %w", ag, bno, err)
	}
	max := f.leafMax(k)
	if level > 0 {
		max = f.nodeMax(k)
	}
	if string(b[:4]) != f.magic(k.magic) || !f.sumOK(b, sbtCRC) || int(be.Uint16(b[4:])) != level || int(be.Uint16(b[6:])) > max {
		return nil, fmt.Errorf("xfs: AG %d block %d: not a level %d %s block: %w", ag, bno, level, k.magic, ErrCorrupt)
	}
	return b, nil
}

// sbtShape is how many blocks each level of a tree over n records
// needs, leaves first; the last level is the root's single block.
func (f *FS) sbtShape(n int, k sbtKind) []int {
	lm, nm := f.leafMax(k), f.nodeMax(k)
	levels := []int{max(1, (n+lm-1)/lm)}
	for levels[len(levels)-1] > 1 {
		levels = append(levels, (levels[len(levels)-1]+nm-1)/nm)
	}
	return levels
}

func (f *FS) sbtBlocks(n int, k sbtKind) int {
	total := 0
	for _, c := range f.sbtShape(n, k) {
		total += c
	}
	return total
}

// putSbt lays recs out in blocks (as many as sbtBlocks says) and queues
// them; it returns the root and the number of levels.
func (f *FS) putSbt(t *txn, ag uint32, k sbtKind, recs [][]byte, blocks []uint32, uuid []byte) (uint32, int, error) {
	shape := f.sbtShape(len(recs), k)
	if len(shape) > sbtMaxLevels {
		return 0, 0, fmt.Errorf("xfs: AG %d: %s tree would have %d levels: %w", ag, k.magic, len(shape), syscall.EOPNOTSUPP)
	}
	kids, ptrs := recs, []uint32(nil)
	lows, highs := make([][]byte, len(recs)), make([][]byte, len(recs))
	for i, r := range recs {
		lows[i] = k.lowKey(r)
		if k.high != nil {
			highs[i] = k.high(r)
		}
	}
	next := 0
	nm, hdr := f.nodeMax(k), f.sbtHdr()
	for level, nb := range shape {
		mine := blocks[next : next+nb]
		next += nb
		var upLow, upHigh [][]byte
		pos := 0
		for i, cnt := range spreadEven(len(kids), nb) {
			b := f.sbtHeader(ag, k, mine, i, level, cnt, uuid)
			var hi []byte
			for j := 0; j < cnt; j++ {
				if level == 0 {
					copy(b[hdr+j*k.recLen:], kids[pos+j])
				} else {
					copy(b[hdr+j*k.keyArea():], lows[pos+j])
					if k.high != nil {
						copy(b[hdr+j*k.keyArea()+k.keyLen:], highs[pos+j])
					}
					be.PutUint32(b[hdr+nm*k.keyArea()+j*4:], ptrs[pos+j])
				}
				if k.high != nil && (hi == nil || k.less(hi, highs[pos+j])) {
					hi = highs[pos+j]
				}
			}
			if cnt > 0 {
				upLow, upHigh = append(upLow, lows[pos]), append(upHigh, hi)
			}
			pos += cnt
			t.putCRC(f.agOff(ag, mine[i]), b, sbtCRC)
		}
		kids, ptrs, lows, highs = upLow, mine, upLow, upHigh
	}
	return blocks[len(blocks)-1], len(shape), nil
}

// sbtHeader is block i of a level: magic, level, count, siblings and
// the v5 self-describing fields.
func (f *FS) sbtHeader(ag uint32, k sbtKind, level []uint32, i, lvl, cnt int, uuid []byte) []byte {
	b := make([]byte, f.sb.blockSize)
	copy(b, f.magic(k.magic))
	be.PutUint16(b[4:], uint16(lvl))
	be.PutUint16(b[6:], uint16(cnt))
	left, right := siblings(level, i, nullAGBlock)
	be.PutUint32(b[8:], left)
	be.PutUint32(b[12:], right)
	if !f.v5() {
		return b
	}
	be.PutUint64(b[16:], uint64(f.agOff(ag, level[i])/512))
	copy(b[32:48], uuid)
	be.PutUint32(b[48:], ag)
	return b
}

// siblings is block i's left and right neighbours on its level, or null.
func siblings[T any](level []T, i int, null T) (T, T) {
	left, right := null, null
	if i > 0 {
		left = level[i-1]
	}
	if i+1 < len(level) {
		right = level[i+1]
	}
	return left, right
}
