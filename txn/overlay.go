package txn

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// BlockSize is the granularity of the overlay: the page size of the file
// systems above and of the host, so a file system's metadata write costs
// one block and no read-modify-write of a neighbour.
const BlockSize = 4096

// maxRun bounds the buffers the overlay and commit use for one run.
const maxRun = 1 << 20

// Overlay is a vdisk.Disk that keeps every write in copy-on-write blocks
// over a base disk it never writes. Changed blocks live in an anonymous
// temporary file; RAM holds only their index (a map entry per 4 KiB).
// ReadAt is safe for concurrent use; WriteAt serialises.
type Overlay struct {
	mu      sync.RWMutex
	base    vdisk.Disk
	size    int64
	tmp     *os.File
	blocks  map[int64]int64 // block index → slot in tmp (offset/BlockSize)
	slots   int64           // slots allocated in tmp
	changed int64           // bytes of the virtual disk held in blocks
	closed  bool
}

// NewOverlay puts an overlay over base. Changed blocks go to an anonymous
// file in tmpDir (os.TempDir() when ""); beside the image is a good place,
// since the changes will land there at commit anyway. The overlay owns
// base: Close closes it.
func NewOverlay(base vdisk.Disk, tmpDir string) (*Overlay, error) {
	tmp, err := tempFile(tmpDir)
	if err != nil {
		return nil, err
	}
	return &Overlay{base: base, size: base.Size(), tmp: tmp, blocks: map[int64]int64{}}, nil
}

// Size is the virtual disk size, the base's.
func (o *Overlay) Size() int64 { return o.size }

// Info is the base's, writable: the overlay takes writes whatever the
// base says, since nothing reaches it before Commit.
func (o *Overlay) Info() vdisk.Info {
	o.mu.RLock()
	defer o.mu.RUnlock()
	in := o.base.Info()
	in.ReadOnly = ""
	return in
}

// Flush has nothing to do: changes stay in the overlay until Commit.
func (o *Overlay) Flush() error { return nil }

// Close drops every change and closes the temporary file and the base.
func (o *Overlay) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	o.blocks = nil
	err := o.tmp.Close()
	if berr := o.base.Close(); err == nil {
		err = berr
	}
	return err
}

// Dirty reports whether the overlay holds changes not yet committed.
func (o *Overlay) Dirty() bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.blocks) > 0
}

// ChangedBytes is how many bytes of the virtual disk the overlay holds
// (whole blocks written to, whether or not their content differs).
func (o *Overlay) ChangedBytes() int64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.changed
}

// Discard drops every change: reads show the base again.
func (o *Overlay) Discard() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return os.ErrClosed
	}
	return o.reset()
}

func (o *Overlay) reset() error {
	o.blocks = map[int64]int64{}
	o.slots, o.changed = 0, 0
	if err := o.tmp.Truncate(0); err != nil {
		return fmt.Errorf("txn: truncate overlay file: %w", err)
	}
	return nil
}

// blockLen is the length of block idx: BlockSize except for a last,
// partial block of a disk whose size is not a multiple of BlockSize.
func (o *Overlay) blockLen(idx int64) int {
	return int(min(BlockSize, o.size-idx*BlockSize))
}

// ReadAt reads the overlay's blocks where it has them and the base's
// elsewhere, in as few calls to either as the layout allows.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.readAt(p, off)
}

// readAt is ReadAt for a caller that holds o.mu (the commit, reading the
// new guest for the history).
func (o *Overlay) readAt(p []byte, off int64) (int, error) {
	if o.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("txn: overlay read at %d: %w", off, vdisk.ErrOutOfRange)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > o.size-off {
		p = p[:o.size-off]
	}
	for pos := 0; pos < len(p); {
		n, err := o.readRun(p[pos:], off+int64(pos))
		if err != nil {
			return pos, err
		}
		pos += n
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// readRun reads the longest prefix of p that is either all base or all
// overlay blocks with consecutive slots.
func (o *Overlay) readRun(p []byte, off int64) (int, error) {
	idx := off / BlockSize
	slot, inOverlay := o.blocks[idx]
	n := BlockSize - int(off%BlockSize)
	for next := idx + 1; n < len(p); next++ {
		s, ok := o.blocks[next]
		if ok != inOverlay || (ok && s != slot+(next-idx)) {
			break
		}
		n += BlockSize
	}
	n = min(n, len(p))
	if !inOverlay {
		if _, err := o.base.ReadAt(p[:n], off); err != nil && err != io.EOF {
			return 0, fmt.Errorf("txn: overlay base read at %d: %w", off, err)
		}
		return n, nil
	}
	if _, err := o.tmp.ReadAt(p[:n], slot*BlockSize+off%BlockSize); err != nil {
		return 0, fmt.Errorf("txn: overlay file read: %w", err)
	}
	return n, nil
}

// WriteAt copies p into overlay blocks, reading the base only for the
// first write to a block that does not cover it whole.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, os.ErrClosed
	}
	if err := vdisk.CheckRange(off, len(p), o.size); err != nil {
		return 0, fmt.Errorf("txn: overlay write of %d bytes at %d: %w", len(p), off, err)
	}
	for pos := 0; pos < len(p); {
		n, err := o.writeRun(p[pos:], off+int64(pos))
		if err != nil {
			return pos, err
		}
		pos += n
	}
	return len(p), nil
}

// writeRun writes a prefix of p: either into one block, or, when p covers
// whole blocks not yet in the overlay, all of them in one call.
func (o *Overlay) writeRun(p []byte, off int64) (int, error) {
	idx := off / BlockSize
	in := int(off % BlockSize)
	if slot, ok := o.blocks[idx]; ok {
		n := min(len(p), BlockSize-in)
		_, err := o.tmp.WriteAt(p[:n], slot*BlockSize+int64(in))
		return n, o.wrapTmpErr(err)
	}
	if in == 0 && len(p) >= o.blockLen(idx) {
		return o.writeFresh(p, idx)
	}
	buf := make([]byte, o.blockLen(idx))
	if _, err := o.base.ReadAt(buf, idx*BlockSize); err != nil && err != io.EOF {
		return 0, fmt.Errorf("txn: overlay base read at %d: %w", idx*BlockSize, err)
	}
	n := copy(buf[in:], p)
	return n, o.addBlocks(idx, buf)
}

// writeFresh writes the whole blocks at the start of p that are not yet in
// the overlay, to consecutive new slots.
func (o *Overlay) writeFresh(p []byte, idx int64) (int, error) {
	n := 0
	for i := idx; n < len(p) && n+o.blockLen(i) <= len(p) && n < maxRun; i++ {
		if _, ok := o.blocks[i]; ok {
			break
		}
		n += o.blockLen(i)
	}
	return n, o.addBlocks(idx, p[:n])
}

// addBlocks stores data (whole blocks from idx on) in new slots.
func (o *Overlay) addBlocks(idx int64, data []byte) error {
	if _, err := o.tmp.WriteAt(data, o.slots*BlockSize); err != nil {
		return o.wrapTmpErr(err)
	}
	for i := 0; i*BlockSize < len(data); i++ {
		o.blocks[idx+int64(i)] = o.slots
		o.slots++
		o.changed += int64(o.blockLen(idx + int64(i)))
	}
	return nil
}

func (o *Overlay) wrapTmpErr(err error) error {
	if err != nil {
		return fmt.Errorf("txn: overlay file write: %w", err)
	}
	return nil
}

// Changes calls fn for each run of changed bytes, in disk order, in runs
// of at most 1 MiB. p is valid only during the call. Writes wait until
// Changes returns.
func (o *Overlay) Changes(fn func(off int64, p []byte) error) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return os.ErrClosed
	}
	return o.changes(fn)
}

func (o *Overlay) changes(fn func(off int64, p []byte) error) error {
	idxs := make([]int64, 0, len(o.blocks))
	for i := range o.blocks {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	buf := make([]byte, 0, maxRun)
	start := int64(-1)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := fn(start*BlockSize, buf)
		buf = buf[:0]
		return err
	}
	for _, i := range idxs {
		if len(buf) > 0 && (i != start+int64(len(buf)/BlockSize) || len(buf)+BlockSize > maxRun) {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(buf) == 0 {
			start = i
		}
		n := o.blockLen(i)
		if _, err := o.tmp.ReadAt(buf[len(buf):len(buf)+n], o.blocks[i]*BlockSize); err != nil {
			return fmt.Errorf("txn: overlay file read: %w", err)
		}
		buf = buf[:len(buf)+n]
	}
	return flush()
}
