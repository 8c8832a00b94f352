package ntfs

import (
	"fmt"
	"io"
	"syscall"

	"github.com/offvm/offvm/internal/compress"
)

// readView is what a READ of a file's unnamed data needs, resolved once
// per file rather than once per READ: whether the content can be read at
// all, the WOF chunk table's stream, or the data stream with its merged
// runlist. Made at lookup (which parsed the record anyway) or at the
// first READ, it outlives the inode in the cache: a view costs a runlist,
// an inode its 1 KiB records, and a scan's readdirplus parses more
// records than the inode cache keeps before the READs come. Writers drop
// it with the inode (cache.forgetInode).
type readView struct {
	s   *stream  // the unnamed data stream; nil: none (reads as empty)
	wof *wofFile // non-nil: WOF-compressed content, read through it
}

// viewOf returns the read view of file ino, made and cached on first use.
func (v *Volume) viewOf(ino uint64) (*readView, error) {
	if rv := v.cache.getView(ino); rv != nil {
		return rv, nil
	}
	in, err := v.loadInode(ino)
	if err != nil {
		return nil, err
	}
	return v.makeView(in)
}

// makeView resolves what ReadAt reads of in and caches it; content that
// cannot be read (a directory, EFS, dedup, external WOF) is an error,
// never cached: it is found again from the cached inode.
func (v *Volume) makeView(in *inode) (*readView, error) {
	if in.isDir() {
		return nil, fmt.Errorf("ntfs: MFT record %d is a directory: %w", in.num, syscall.EISDIR)
	}
	if err := v.readable(in); err != nil {
		return nil, err
	}
	w, err := v.wofOpen(in)
	if err != nil {
		return nil, err
	}
	rv := &readView{wof: w}
	if w == nil {
		rv.s = in.find(atData, "")
		if rv.s != nil && rv.s.resident { // own copy: the record's buffer may go
			rv.s.value = append([]byte(nil), rv.s.value...)
		}
	}
	v.cache.putView(in.num, rv)
	return rv, nil
}

// read reads the content the view describes, as io.ReaderAt does.
func (v *Volume) read(rv *readView, p []byte, off int64) (int, error) {
	switch {
	case rv.wof != nil:
		return v.wofReadAt(rv.wof, p, off)
	case rv.s == nil:
		return 0, io.EOF
	}
	return v.readStream(rv.s, p, off)
}

// readStream reads a stream's content as io.ReaderAt does: holes, the
// uninitialised tail and compressed units all read as their plain bytes.
func (v *Volume) readStream(s *stream, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ntfs: negative offset: %w", syscall.EINVAL)
	}
	if off >= s.dataSize {
		return 0, io.EOF
	}
	var eof error
	if rest := s.dataSize - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	switch {
	case s.resident:
		copy(p, s.value[min(off, int64(len(s.value))):])
		if int64(len(s.value)) < off+int64(len(p)) {
			clear(p[max(0, int64(len(s.value))-off):])
		}
	case s.flags&afCompressed != 0 && s.compUnit > 0:
		if err := v.readCompressed(s, p, off); err != nil {
			return 0, err
		}
	default:
		valid := len(p)
		if s.initSize < off+int64(len(p)) {
			valid = int(max(0, s.initSize-off))
		}
		if err := v.readRuns(s.runs, p[:valid], off); err != nil {
			return 0, err
		}
		clear(p[valid:])
	}
	return len(p), eof
}

// readCompressed reads p from a compressed stream unit by unit.
func (v *Volume) readCompressed(s *stream, p []byte, off int64) error {
	unitSize := int64(s.compUnit) * v.geo.clusterSize
	for len(p) > 0 {
		u := off / unitSize
		data, err := v.compressedUnit(s, u)
		if err != nil {
			return err
		}
		n := copy(p, data[off-u*unitSize:])
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// compressedUnit returns the plain bytes of compression unit u. A unit is
// all holes (zeros), fully allocated (stored plain), or LZNT1 data in its
// first clusters followed by a hole.
func (v *Volume) compressedUnit(s *stream, u int64) ([]byte, error) {
	cs := v.geo.clusterSize
	cu := int64(s.compUnit)
	if cu*cs > 4<<20 {
		return nil, fmt.Errorf("ntfs: compression unit of %d bytes: %w", cu*cs, syscall.EIO)
	}
	dst := make([]byte, cu*cs)
	vcn0 := u * cu
	real := int64(0)
	for vcn := vcn0; vcn < vcn0+cu; {
		i := findRun(s.runs, vcn)
		if i < 0 {
			break
		}
		r := s.runs[i]
		n := min(r.vcn+r.length, vcn0+cu) - vcn
		if r.lcn >= 0 {
			real += n
		}
		vcn += n
	}
	switch {
	case real == 0:
		return dst, nil
	case real == cu:
		return dst, v.readRuns(s.runs, dst, vcn0*cs)
	}
	src := make([]byte, real*cs)
	if err := v.readRuns(s.runs, src, vcn0*cs); err != nil {
		return nil, err
	}
	if _, err := compress.LZNT1(dst, src); err != nil {
		return nil, fmt.Errorf("compression unit %d: %w", u, err)
	}
	return dst, nil
}
