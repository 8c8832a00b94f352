package ntfs

import (
	"fmt"
	"sort"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// op is one write operation: the records it edits are read once, changed
// in memory and written together at the end.
type op struct {
	v     *Volume
	recs  map[uint64]*record
	dirty map[uint64]bool
	dirs  map[uint64]*dirW
	mft   *mftBits // set while $MFT itself grows (mft_grow.go)
}

func (v *Volume) newOp() *op {
	return &op{v: v, recs: map[uint64]*record{}, dirty: map[uint64]bool{}, dirs: map[uint64]*dirW{}}
}

// rec returns record n for editing (the same object for the whole op).
func (o *op) rec(n uint64) (*record, error) {
	if r := o.recs[n]; r != nil {
		return r, nil
	}
	r, err := o.v.freshRecord(n)
	if err != nil {
		return nil, err
	}
	o.recs[n] = r
	return r, nil
}

func (o *op) add(r *record) { o.recs[r.num], o.dirty[r.num] = r, true }

func (o *op) mark(r *record) { o.dirty[r.num] = true }

// dir returns the index editor of directory n; its record is marked
// dirty, every time (refreshIndexCopy may have cleared the mark).
func (o *op) dir(n uint64) (*dirW, error) {
	if dw := o.dirs[n]; dw != nil {
		o.dirty[n] = true
		return dw, nil
	}
	r, err := o.rec(n)
	if err != nil {
		return nil, err
	}
	dw, err := o.openDirW(r)
	if err != nil {
		return nil, err
	}
	o.dirs[n] = dw
	o.dirty[n] = true
	return dw, nil
}

// commit writes every changed record, in record order.
func (o *op) commit() error {
	err := o.saveIndexBits()
	if err == nil {
		err = o.syncLists()
	}
	if err != nil {
		return err
	}
	var nums []uint64
	for n := range o.dirty {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		if err := o.v.writeRecord(o.recs[n]); err != nil {
			return err
		}
	}
	o.installInodes(nums)
	return nil
}

// installInodes caches the parsed files whose records the op wrote (nums),
// made from the records it holds, as the device now holds them:
// writeRecord dropped them, and re-reading a big directory's records and
// attribute list at the next lookup costs more than parsing them here.
// Readers see the new inode whole or the old one not at all (they wait on
// the write lock). NTFS metadata files are left dropped: some of their
// records are written outside the op (mftalloc.go, mft_grow.go).
func (o *op) installInodes(nums []uint64) {
	v := o.v
	get := func(n uint64) (*record, error) {
		if r := o.recs[n]; r != nil && o.dirty[n] {
			return r, nil
		}
		return v.readRecord(n)
	}
	done := map[uint64]bool{}
	for _, n := range nums {
		owner := n
		if b := o.recs[n].base; b != 0 {
			owner = b
		}
		if owner < firstUser || done[owner] {
			continue
		}
		done[owner] = true
		if r, err := get(owner); err == nil {
			_, _ = v.inodeFrom(r, get) // a file it cannot parse is read again when asked for
		}
	}
}

// saveIndexBits writes the index blocks and stores the bitmaps of the
// indexes the op changed.
func (o *op) saveIndexBits() error {
	for _, dw := range o.dirs {
		if err := dw.flushNodes(); err != nil {
			return err
		}
		if err := dw.saveBits(); err != nil {
			return err
		}
	}
	return nil
}

// allocExtRecord allocates an extension record: for $MFT's own runlist
// one of the records kept for it, for any other file the next free one.
func (o *op) allocExtRecord() (uint64, error) {
	if o.mft != nil {
		return o.v.allocMFTExtension(o)
	}
	return o.v.allocRecord()
}

// freeRecord gives back an extension record the op no longer needs.
func (o *op) freeRecord(n uint64) error {
	if o.mft != nil {
		return o.v.setBitIn(o.mft, n, false, true)
	}
	return o.v.freeRecordBit(n)
}

// do runs one write operation under the write lock and commits its records.
func (v *Volume) do(fn func(o *op) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.beginWrite(); err != nil {
		return err
	}
	defer v.statCache.Store(nil)
	st := v.beginOp()
	o := v.newOp()
	err := fn(o)
	if err == nil {
		err = o.commit()
	}
	if err != nil {
		v.undoOp(st) // the volume is as before the operation
		return err
	}
	v.endOp()
	return nil
}

// attrAfter stats ino once the write lock is released.
func (v *Volume) attrAfter(ino uint64, err error) (volume.Attr, error) {
	if err != nil {
		return volume.Attr{}, err
	}
	return v.GetAttr(volume.Ino(ino))
}

// fileRec opens a regular file's record for a data change.
func (o *op) fileRec(ino volume.Ino) (*record, error) {
	r, err := o.rec(uint64(ino))
	if err != nil {
		return nil, err
	}
	if r.flags&recIsDir != 0 {
		return nil, fmt.Errorf("ntfs: MFT record %d is a directory: %w", r.num, syscall.EISDIR)
	}
	if uint64(ino) < firstUser {
		return nil, fmt.Errorf("ntfs: MFT record %d is NTFS metadata: %w", r.num, syscall.EPERM)
	}
	o.mark(r)
	return r, nil
}
