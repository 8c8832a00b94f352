package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
)

const pageSize = 4096

// lazyBins fills h.data from the file on demand. A clean hive needs no
// replay, so its bins can be read where cells are touched: inspecting a few
// keys of a 200 MiB SOFTWARE hive then reads a few hundred KiB of it. The
// hbin headers are checked bin by bin as their pages are first loaded (a
// full checkBins walk would touch every bin).
//
// Memory follows what is read, not the hive's size: each bin gets its own
// buffer when its header is first checked (a few bins for a lookup in an
// 11 MiB SYSTEM hive), and the whole hive is assembled only by loadAll.
//
// Readers fill pages in parallel: a page is read and its bin checked under
// mu, then published by its atomic flags, so a reader that finds the pages
// it needs loaded and checked reads its bin's buffer without taking mu (a
// loaded page is never written again; unloaded pages are written only
// under mu).
type lazyBins struct {
	r      io.ReaderAt
	size   uint64 // bytes of hive bins data
	mu     sync.Mutex
	loaded []atomic.Bool  // per 4 KiB page of the bins data
	bin    []atomic.Int32 // per page: index+1 of its bin's first page, 0 unknown, -1 bad
	// pages holds, by groups of pageGroupLen pages, each page's bytes up
	// to the end of its bin (a slice of the bin's buffer), set before
	// bin[p] is published (page, setPage). Groups are made as their pages
	// are first checked: a slice per page (24 bytes each) was a third of
	// what opening an 11 MiB SYSTEM hive allocated.
	pages   []atomic.Pointer[pageGroup]
	bad     map[int]error // under mu
	scratch []byte        // a page read while looking for a bin's header, under mu
}

const pageGroupLen = 64

type pageGroup [pageGroupLen][]byte

// page is page p's bytes up to the end of its bin; nil before its bin is
// known. Readers call it after seeing bin[p] > 0.
func (z *lazyBins) page(p int) []byte {
	g := z.pages[p/pageGroupLen].Load()
	if g == nil {
		return nil
	}
	return g[p%pageGroupLen]
}

// setPage sets page p's bytes; the caller holds mu and publishes bin[p]
// after.
func (z *lazyBins) setPage(p int, b []byte) {
	g := z.pages[p/pageGroupLen].Load()
	if g == nil {
		g = new(pageGroup)
		z.pages[p/pageGroupLen].Store(g)
	}
	g[p%pageGroupLen] = b
}

// ready says whether pages first..last are loaded and lie in sound bins.
func (z *lazyBins) ready(first, last int) bool {
	for p := first; p <= last; p++ {
		if !z.loaded[p].Load() || z.bin[p].Load() <= 0 {
			return false
		}
	}
	return true
}

// ParseReaderAt opens a hive of size bytes read through r. A clean hive
// (right checksum, equal sequence numbers) is read lazily: only the base
// block now, then the pages its cells need as they are used. A dirty hive
// is read whole and replayed from the logs as Parse does. r must stay
// readable, and its content unchanged, while the hive is in use.
func ParseReaderAt(r io.ReaderAt, size int64, logs ...[]byte) (*Hive, error) {
	return OpenReaderAt(r, size, namedLogs(logs))
}

// OpenReaderAt is ParseReaderAt with named logs (the names are used in
// messages: "SYSTEM.LOG1: base block checksum is wrong").
func OpenReaderAt(r io.ReaderAt, size int64, logs []Log) (*Hive, error) {
	h, err := parseReaderAt(r, size, logs)
	if err != nil {
		return nil, fmt.Errorf("hive: %w", err)
	}
	return h, nil
}

func parseReaderAt(r io.ReaderAt, size int64, logs []Log) (*Hive, error) {
	if size < baseBlockSize {
		return nil, fmt.Errorf("file of %d bytes is shorter than a base block: %w", size, ErrCorrupt)
	}
	head := make([]byte, baseBlockSize)
	if err := readFull(r, head, 0); err != nil {
		return nil, fmt.Errorf("base block: %w", err)
	}
	bb, err := checkBaseBlock(head)
	if err != nil || bb.seq1 != bb.seq2 {
		// Dirty, or broken: the replay and its messages need the file.
		whole, err := readWhole(r, size, head)
		if err != nil {
			return nil, err
		}
		return parse(whole, logs)
	}
	h := &Hive{secs: make(map[uint32]*Security), name: "hive", bb: bb}
	h.maxSeq = bb.seq1
	h.classifyLogs(logs) // for maxSeq and the log format, as recover does
	n := min(uint64(bb.binsSize), uint64(size)-baseBlockSize)
	pages := (n + pageSize - 1) / pageSize
	h.limit = uint32(n)
	h.lazy = &lazyBins{r: r, size: n, loaded: make([]atomic.Bool, pages), bin: make([]atomic.Int32, pages),
		pages: make([]atomic.Pointer[pageGroup], (pages+pageGroupLen-1)/pageGroupLen), bad: map[int]error{}}
	root, err := h.parseKey(h.bb.root, nil)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	h.root = root
	return h, nil
}

// readWhole reads a file of size bytes for the replay path.
func readWhole(r io.ReaderAt, size int64, head []byte) ([]byte, error) {
	if size > 1<<32+baseBlockSize {
		return nil, fmt.Errorf("file of %d bytes is larger than any hive: %w", size, ErrCorrupt)
	}
	b := make([]byte, size)
	copy(b, head)
	if err := readFull(r, b[len(head):], int64(len(head))); err != nil {
		return nil, err
	}
	return b, nil
}

// readFull reads len(p) bytes at file offset off; a short read means the
// file is shorter than it said (corrupt), any other failure is an I/O error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	for n < len(p) && n > 0 && err == nil { // a reader may return less
		var m int
		m, err = r.ReadAt(p[n:], off+int64(n))
		if m == 0 && err == nil {
			break
		}
		n += m
	}
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("file ends after %d of the %d bytes at offset 0x%x: %w", n, len(p), off, ErrCorrupt)
	}
	if errors.Is(err, syscall.EIO) {
		return fmt.Errorf("reading %d bytes at offset 0x%x: %w", len(p), off, err)
	}
	return fmt.Errorf("reading %d bytes at offset 0x%x: %w: %w", len(p), off, err, syscall.EIO)
}

// dataLen is the length of the hive bins data, read or not.
func (h *Hive) dataLen() uint64 {
	if h.lazy != nil {
		return h.lazy.size
	}
	return uint64(len(h.data))
}

// bytesAt returns the n bytes of bins data at off, which fill has loaded
// (cell checks the bounds first). A lazy hive returns a slice of the
// bin's buffer; a range running past its bin (only a corrupt hive has
// one) is copied together from the bins it crosses, as Parse reads it.
func (h *Hive) bytesAt(off, n uint64) []byte {
	z := h.lazy
	if z == nil {
		return h.data[off : off+n]
	}
	if pg := z.page(int(off / pageSize))[off%pageSize:]; uint64(len(pg)) >= n {
		return pg[:n]
	}
	out := make([]byte, 0, n)
	for pos := off; pos < off+n; {
		pg := z.page(int(pos / pageSize))[pos%pageSize:]
		take := min(uint64(len(pg)), off+n-pos, pageSize-pos%pageSize)
		out = append(out, pg[:take]...)
		pos += take
	}
	return out
}

// fill makes sure the bins data [off, off+n) is loaded and lies in sound
// hive bins. Bounds are left to cell, which reports them.
func (h *Hive) fill(off uint32, n uint64) error {
	if h.lazy == nil || off&7 != 0 || uint64(off) >= h.lazy.size {
		return nil
	}
	end := min(uint64(off)+n, h.lazy.size)
	first, last := int(off/pageSize), int((end-1)/pageSize)
	z := h.lazy
	if z.ready(first, last) {
		return nil
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for p := first; p <= last; p++ {
		if err := h.binOf(p); err != nil {
			return err
		}
	}
	return h.loadPages(first, last)
}

// loadPages reads the pages not yet loaded in [first, last] into their
// bins' buffers (binOf has made them), each run of pages within one bin in
// one read. The caller holds z.mu (or h.mu exclusively).
func (h *Hive) loadPages(first, last int) error {
	z := h.lazy
	for p := first; p <= last; {
		if z.loaded[p].Load() {
			p++
			continue
		}
		q := p
		for q+1 <= last && !z.loaded[q+1].Load() && z.bin[q+1].Load() == z.bin[p].Load() {
			q++
		}
		start := uint64(p) * pageSize
		end := min(uint64(q+1)*pageSize, z.size)
		if err := readFull(z.r, z.page(p)[:end-start], int64(start)+baseBlockSize); err != nil {
			return fmt.Errorf("hive bins 0x%x-0x%x: %w", start, end, err)
		}
		for i := p; i <= q; i++ {
			z.loaded[i].Store(true)
		}
		p = q + 1
	}
	return nil
}

// binOf finds and checks the hive bin holding page p: the nearest page at
// or before p that starts with an hbin header naming its own offset. The
// checks are checkBins's, with its messages; a bad bin is noted as a
// problem once and refused from then on. The caller holds z.mu.
func (h *Hive) binOf(p int) error {
	z := h.lazy
	switch b := z.bin[p].Load(); {
	case b > 0:
		return nil
	case b < 0:
		return z.bad[p]
	}
	for q := p; q >= 0; q-- {
		if z.bin[q].Load() < 0 {
			z.bad[p] = z.bad[q]
			z.bin[p].Store(-1)
			return z.bad[q]
		}
		if z.bin[q].Load() > 0 {
			// The bin holding q ends before p, and no sound header lies
			// between: the one that should follow it is bad.
			first := int(z.bin[q].Load() - 1)
			end := uint64(first)*pageSize + uint64(len(z.page(first)))
			found, err := h.readRaw(end, 4)
			if err != nil {
				return err
			}
			return h.badBin(p, fmt.Errorf("no hbin signature at hive bins offset 0x%x (found %q): %w", end, found, ErrCorrupt))
		}
		pos := uint64(q) * pageSize
		if q == p {
			if done, err := h.binFromPage(p); done {
				return err
			}
		}
		hdr, err := h.readRaw(pos, hbinHeaderLen)
		if err != nil {
			return err
		}
		if len(hdr) < hbinHeaderLen {
			return h.badBin(p, fmt.Errorf("hive bin at 0x%x truncated: %w", pos, ErrCorrupt))
		}
		if string(hdr[:4]) != "hbin" {
			if q == 0 {
				return h.badBin(p, fmt.Errorf("no hbin signature at hive bins offset 0x%x (found %q): %w", pos, hdr[:4], ErrCorrupt))
			}
			continue // inside a bin larger than a page
		}
		return h.checkBin(p, q, hdr)
	}
	return nil
}

// binFromPage reads page p whole and, when it starts a sound bin, checks
// it and keeps the page as loaded: one read instead of one for the header
// and one for the page (a lookup's pages are mostly one-page bins). It
// reports whether it settled page p's bin (err is then binOf's answer);
// when the page cannot be read whole or starts no bin, binOf goes on as
// before, so a hive cut short fails with the same messages. The caller
// holds z.mu.
func (h *Hive) binFromPage(p int) (bool, error) {
	z := h.lazy
	pos := uint64(p) * pageSize
	if z.scratch == nil {
		z.scratch = make([]byte, pageSize)
	}
	pg := z.scratch[:min(pageSize, z.size-pos)]
	if len(pg) < hbinHeaderLen || readFull(z.r, pg, int64(pos)+baseBlockSize) != nil || string(pg[:4]) != "hbin" {
		return false, nil
	}
	if err := h.checkBin(p, p, pg); err != nil {
		return true, err
	}
	copy(z.page(p), pg)
	z.loaded[p].Store(true)
	return true, nil
}

// checkBin checks the hbin header at page q, which must cover page p.
func (h *Hive) checkBin(p, q int, hdr []byte) error {
	pos := uint64(q) * pageSize
	if off := binary.LittleEndian.Uint32(hdr[4:]); uint64(off) != pos {
		return h.badBin(p, fmt.Errorf("hive bin at 0x%x says it is at 0x%x: %w", pos, off, ErrCorrupt))
	}
	size := uint64(binary.LittleEndian.Uint32(hdr[8:]))
	if size < 4096 || size%4096 != 0 {
		return h.badBin(p, fmt.Errorf("hive bin at 0x%x has bad size 0x%x: %w", pos, size, ErrCorrupt))
	}
	z := h.lazy
	if pos+size > z.size {
		return h.badBin(p, fmt.Errorf("hive bin at 0x%x (0x%x bytes) runs past the end of the file (0x%x bytes of hive bins data, 0x%x declared): %w",
			pos, size, z.size, h.bb.binsSize, ErrCorrupt))
	}
	if pos+size <= uint64(p)*pageSize {
		return h.badBin(p, fmt.Errorf("hive bins offset 0x%x lies past the hive bin at 0x%x: %w", p*pageSize, pos, ErrCorrupt))
	}
	buf := make([]byte, size) // this bin's memory, filled as its pages are read
	for i := q; i < q+int(size/pageSize); i++ {
		z.setPage(i, buf[uint64(i-q)*pageSize:])
		z.bin[i].Store(int32(q) + 1)
	}
	return nil
}

// readRaw reads up to n bytes of bins data at off straight from the file
// (fewer at its end): hbin headers looked at while finding a bin.
func (h *Hive) readRaw(off uint64, n int) ([]byte, error) {
	z := h.lazy
	b := make([]byte, min(uint64(n), z.size-min(off, z.size)))
	if err := readFull(z.r, b, int64(off)+baseBlockSize); err != nil {
		return nil, fmt.Errorf("hive bins 0x%x: %w", off, err)
	}
	return b, nil
}

func (h *Hive) badBin(p int, err error) error {
	h.lazy.bad[p] = err
	h.lazy.bin[p].Store(-1)
	h.problem(err)
	return err
}

// loadAll reads the rest of a lazy hive and checks its bins as Parse does,
// leaving an ordinary in-memory hive (Serialize needs every cell). The
// caller holds h.mu exclusively: readers check h.lazy without a lock.
func (h *Hive) loadAll() error {
	z := h.lazy
	if z == nil {
		return nil
	}
	data := make([]byte, z.size)
	for p := range z.loaded {
		start := uint64(p) * pageSize
		end := min(start+pageSize, z.size)
		if z.loaded[p].Load() {
			copy(data[start:end], z.page(p))
		} else if err := readFull(z.r, data[start:end], int64(start)+baseBlockSize); err != nil {
			return fmt.Errorf("hive bins 0x%x-0x%x: %w", start, end, err)
		}
	}
	h.data = data
	limit, err := checkBins(h.data)
	h.limit = limit
	if err != nil && len(h.lazy.bad) == 0 {
		h.problem(err)
	}
	h.lazy = nil
	return nil
}
