package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// What a commit changed is read from the changed bytes themselves
// (volume.ChangeFinder), not from a log of what offvm's writer did: the
// MFT records inside $MFT's runs, with their base records when they are
// extension records, and the directories whose INDX blocks are among the
// changed bytes (an index entry's key is a $FILE_NAME, whose first field
// is the directory holding it). Everything the summary compares of a
// file lives in its records (size, times, kind, names); a directory's
// listing lives in its index root (in its record) and INDX blocks.

// maxSniffed bounds the changed bytes Touched reads to find index
// blocks in: past it, it says it cannot tell and the summary walks the
// whole volume, as it did before.
const maxSniffed = 256 << 20

var errTooMuch = errors.New("ntfs: too many changed bytes to map to files")

var _ volume.ChangeFinder = (*Volume)(nil)

// Touched implements volume.ChangeFinder.
func (v *Volume) Touched(changed []volume.Extent) ([]volume.Ino, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t := &touched{v: v, seen: map[uint64]bool{}}
	var sniffed int64
	for _, e := range changed {
		if e.Len <= 0 || e.Off >= v.dev.Size() {
			continue
		}
		if err := t.records(e); err != nil {
			return nil, err
		}
		if sniffed += e.Len; sniffed > maxSniffed {
			return nil, errTooMuch
		}
		if err := t.indexBlocks(e); err != nil {
			return nil, err
		}
	}
	return t.out, nil
}

type touched struct {
	v    *Volume
	seen map[uint64]bool
	out  []volume.Ino
	buf  []byte // indexBlocks' reads
	recs []byte // records' reads
}

func (t *touched) add(n uint64) {
	if !t.seen[n] {
		t.seen[n] = true
		t.out = append(t.out, volume.Ino(n))
	}
}

// records adds the MFT records that e overlaps, and the base record of
// each extension record among them. The records wholly inside one of
// $MFT's runs are read together, up to recordChunk bytes at a time (2,000
// files made or removed are 2 MiB of changed records on each side, one
// read per record before); one that straddles runs is read alone.
func (t *touched) records(e volume.Extent) error {
	v := t.v
	cs, rs := v.geo.clusterSize, int64(v.geo.recordSize)
	count := uint64(v.mftSize / rs)
	for _, r := range v.mftRuns {
		if r.lcn < 0 {
			continue
		}
		lo, hi := max(e.Off, r.lcn*cs), min(e.Off+e.Len, (r.lcn+r.length)*cs)
		if lo >= hi {
			continue
		}
		first := uint64((r.vcn*cs + lo - r.lcn*cs) / rs)
		last := min(uint64((r.vcn*cs+hi-r.lcn*cs-1)/rs), count-1)
		for n := first; n <= last; {
			k := t.inRun(r, n, last)
			if err := t.recordsAt(r, n, k); err != nil {
				return err
			}
			n += k
		}
	}
	return nil
}

const recordChunk = 256 << 10

// inRun is how many records from n on (at most to last) can be read in
// one piece from run r: all of them wholly inside it, or 1 (alone).
func (t *touched) inRun(r run, n, last uint64) uint64 {
	cs, rs := t.v.geo.clusterSize, int64(t.v.geo.recordSize)
	k := uint64(0)
	for n+k <= last && k < uint64(recordChunk/rs) {
		start := int64(n+k) * rs
		if start < r.vcn*cs || start+rs > (r.vcn+r.length)*cs {
			break
		}
		k++
	}
	return max(k, 1)
}

// recordsAt adds records n to n+k-1 of run r (k 1: record n, read
// wherever it lies), with their base records.
func (t *touched) recordsAt(r run, n, k uint64) error {
	v := t.v
	rs := int64(v.geo.recordSize)
	if k == 1 {
		rec, err := v.readRecord(n)
		return t.addRecord(n, rec, err)
	}
	if cap(t.recs) < int(k)*int(rs) {
		t.recs = make([]byte, recordChunk)
	}
	buf := t.recs[:int(k)*int(rs)]
	off := r.lcn*v.geo.clusterSize + int64(n)*rs - r.vcn*v.geo.clusterSize
	if _, err := v.dev.ReadAt(buf, off); err != nil {
		return fmt.Errorf("ntfs: MFT records %d to %d, read at %d: %w: %w", n, n+k-1, off, syscall.EIO, err)
	}
	for i := uint64(0); i < k; i++ {
		rec, err := decodeRecord(buf[int64(i)*rs:int64(i+1)*rs], n+i)
		if err := t.addRecord(n+i, rec, err); err != nil {
			return err
		}
	}
	return nil
}

// addRecord adds record n and, for an extension record, its base; a
// record that is not a FILE record on this side adds n alone.
func (t *touched) addRecord(n uint64, rec *record, err error) error {
	t.add(n)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil
	case err != nil:
		return err
	}
	if rec.base != 0 {
		t.add(rec.base)
	}
	return nil
}

// indexBlocks adds the directories named as parents by the $I30 INDX
// blocks that start inside e.
func (t *touched) indexBlocks(e volume.Extent) error {
	v := t.v
	bs := v.geo.indexBlockSize
	step := v.vcnBytes(bs)
	start := e.Off / step * step
	end := min(e.Off+e.Len, v.dev.Size())
	const chunk = 1 << 20
	if t.buf == nil { // one buffer for all the extents
		t.buf = make([]byte, chunk+bs)
	}
	buf := t.buf
	for off := start; off < end; off += chunk {
		// what holds the blocks that start before end: a changed 4 KiB
		// block costs a 4 KiB read, not a chunk's
		n := min(int64(len(buf)), end-off+int64(bs), v.dev.Size()-off)
		if _, err := v.dev.ReadAt(buf[:n], off); err != nil {
			return fmt.Errorf("ntfs: reading changed bytes at %d: %w", off, syscall.EIO)
		}
		for k := int64(0); k < chunk && off+k < end && k+int64(bs) <= n; k += step {
			if string(buf[k:k+4]) == "INDX" {
				if err := t.indexParents(buf[k : k+int64(bs)]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// indexParents adds the directory an INDX block's entries belong to
// (a view index's keys are shorter than a $FILE_NAME and add nothing).
// A block with the INDX magic that does not parse as an index node is
// an error: the walk would fail to list it, so only the whole walk can
// say what it does.
func (t *touched) indexParents(b []byte) error {
	blk := append([]byte(nil), b...)
	node, err := func() (*indexNode, error) {
		if err := applyFixup(blk, "INDX"); err != nil {
			return nil, err
		}
		return parseNode(blk[0x18:], 0, false)
	}()
	if err != nil {
		return fmt.Errorf("ntfs: a changed index block: %w", err)
	}
	for _, e := range node.entries {
		if e.flags&ieLast == 0 && len(e.key) >= 0x42 {
			t.add(binary.LittleEndian.Uint64(e.key) & refNumMask)
		}
	}
	return nil
}

// Parents implements volume.ChangeFinder from the $FILE_NAME attributes
// (extension records included).
func (v *Volume) Parents(ino volume.Ino) ([]volume.Ino, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in, err := v.loadInode(uint64(ino))
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []volume.Ino
	for _, f := range in.names {
		p := volume.Ino(f.parent & refNumMask)
		if p != ino && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}
