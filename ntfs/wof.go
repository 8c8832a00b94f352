package ntfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/offvm/offvm/internal/compress"
	"github.com/offvm/offvm/internal/lru"
)

// WOF "System Compression" (CompactOS). The file carries a reparse point
// tagged IO_REPARSE_TAG_WOF naming the FILE provider and an algorithm; its
// unnamed $DATA is sparse with the plain size; the compressed bytes are in
// the named stream WofCompressedData: a table of chunk offsets (one per
// chunk after the first, 4 bytes each, or 8 when the plain size is 4 GiB
// or more, counted from the end of the table), then the chunks. A chunk
// whose stored size equals its plain size is stored as is. Each chunk
// decodes on its own, so a read touches only the chunks it covers.

const (
	wofStreamName    = "WofCompressedData"
	wofVersion       = 1
	wofProviderFile  = 2
	wofFileVersion   = 1
	wofFormatXpress4 = 0
	wofFormatLZX     = 1
	wofFormatXpress8 = 2
	wofFormatXpr16   = 3
)

// wofFile is what reading a WOF file needs.
type wofFile struct {
	in     *inode
	data   *stream // WofCompressedData
	format uint32
	order  uint  // log2 of the chunk size
	size   int64 // plain size
	chunks int64
	width  int64 // bytes per table entry
}

// wofFormat reads the provider and algorithm from WOF reparse data (the
// part after the 8-byte reparse header); ok is false for anything but the
// FILE provider with a known algorithm (WIMBoot's WIM provider keeps the
// data in an external WIM file).
func wofFormat(d []byte) (format uint32, order uint, ok bool) {
	if len(d) < 16 {
		return 0, 0, false
	}
	le := binary.LittleEndian
	if le.Uint32(d) != wofVersion || le.Uint32(d[4:]) != wofProviderFile || le.Uint32(d[8:]) != wofFileVersion {
		return 0, 0, false
	}
	switch f := le.Uint32(d[12:]); f {
	case wofFormatXpress4:
		return f, 12, true
	case wofFormatXpress8:
		return f, 13, true
	case wofFormatXpr16:
		return f, 14, true
	case wofFormatLZX:
		return f, 15, true
	}
	return 0, 0, false
}

// wofOpen returns the WOF view of a file, or nil when the file is not a
// readable WOF FILE-provider file.
func (v *Volume) wofOpen(in *inode) (*wofFile, error) {
	tag, d, err := v.reparseData(in)
	if err != nil || tag != tagWOF {
		return nil, err
	}
	format, order, ok := wofFormat(d)
	data := in.find(atData, wofStreamName)
	if !ok || data == nil {
		return nil, nil
	}
	w := &wofFile{in: in, data: data, format: format, order: order, width: 4}
	if s := in.find(atData, ""); s != nil {
		w.size = s.dataSize
	}
	w.chunks = (w.size + 1<<order - 1) >> order
	if w.size > 0xffffffff {
		w.width = 8
	}
	if w.chunks > 0 && (w.chunks-1) > data.dataSize/w.width {
		return nil, fmt.Errorf("ntfs: MFT record %d: WOF chunk table of %d entries is larger than its %d-byte stream: %w",
			in.num, w.chunks-1, data.dataSize, syscall.EIO)
	}
	return w, nil
}

// isWOFStream says whether a named stream is a WOF file's hidden data.
func (v *Volume) isWOFStream(in *inode, name string) bool {
	if !strings.EqualFold(name, wofStreamName) {
		return false
	}
	w, err := v.wofOpen(in)
	return err == nil && w != nil
}

// wofReadAt reads the plain content like io.ReaderAt.
func (v *Volume) wofReadAt(w *wofFile, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ntfs: negative offset: %w", syscall.EINVAL)
	}
	if off >= w.size {
		return 0, io.EOF
	}
	var eof error
	if rest := w.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	n := 0
	for n < len(p) {
		idx := (off + int64(n)) >> w.order
		c, err := v.wofChunk(w, idx)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], c[off+int64(n)-idx<<w.order:])
	}
	return n, eof
}

// wofChunk returns chunk idx decompressed, from the cache when it can.
func (v *Volume) wofChunk(w *wofFile, idx int64) ([]byte, error) {
	key := wofKey{w.in, idx}
	if c := wofChunks.get(key); c != nil {
		return c, nil
	}
	start, end, err := v.wofChunkBounds(w, idx)
	if err != nil {
		return nil, err
	}
	plain := min(w.size-idx<<w.order, 1<<w.order)
	if end-start > plain || end <= start {
		return nil, fmt.Errorf("ntfs: MFT record %d: WOF chunk %d stored in %d bytes for %d: %w", w.in.num, idx, end-start, plain, syscall.EIO)
	}
	stored := make([]byte, end-start)
	if err := v.wofRead(w, stored, start); err != nil {
		return nil, err
	}
	out := stored
	if int64(len(stored)) < plain {
		out = make([]byte, plain)
		if w.format == wofFormatLZX {
			err = compress.LZX(stored, out)
		} else {
			err = compress.XpressHuffman(stored, out)
		}
		if err != nil {
			return nil, fmt.Errorf("ntfs: MFT record %d: WOF chunk %d: %w: %w", w.in.num, idx, err, syscall.EIO)
		}
	}
	wofChunks.put(key, out)
	return out, nil
}

// wofChunkBounds gives where chunk idx is stored in the stream.
func (v *Volume) wofChunkBounds(w *wofFile, idx int64) (start, end int64, err error) {
	table := (w.chunks - 1) * w.width
	entry := func(i int64) (int64, error) { // offset of chunk i ≥ 1
		b := make([]byte, 8)
		if err := v.wofRead(w, b[:w.width], (i-1)*w.width); err != nil {
			return 0, err
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	}
	end = w.data.dataSize - table
	if idx > 0 {
		if start, err = entry(idx); err != nil {
			return 0, 0, err
		}
	}
	if idx+1 < w.chunks {
		if end, err = entry(idx + 1); err != nil {
			return 0, 0, err
		}
	}
	if start < 0 || end > w.data.dataSize-table {
		return 0, 0, fmt.Errorf("ntfs: MFT record %d: WOF chunk %d at %d-%d is outside its stream: %w", w.in.num, idx, start, end, syscall.EIO)
	}
	return start + table, end + table, nil
}

// wofRead reads exactly len(p) bytes of the compressed stream.
func (v *Volume) wofRead(w *wofFile, p []byte, off int64) error {
	n, err := v.readStream(w.data, p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = syscall.EIO
	}
	return fmt.Errorf("ntfs: MFT record %d: short read of %s at %d: %w", w.in.num, wofStreamName, off, err)
}

// The chunk cache keeps a few decompressed chunks so that sequential
// reads smaller than a chunk decompress each chunk once. Keys hold the
// inode: cached inodes are immutable and writers replace them, so a
// changed file never meets its old chunks.
const maxWofBytes = 32 * 32 << 10 // 32 chunks of 32 KiB

type wofKey struct {
	in  *inode
	idx int64
}

type wofCache struct{ c *lru.Cache[wofKey, []byte] }

var wofChunks = wofCache{lru.New[wofKey, []byte](maxWofBytes)}

func (c wofCache) get(k wofKey) []byte {
	b, _ := c.c.Get(k)
	return b
}

func (c wofCache) put(k wofKey, b []byte) { c.c.Put(k, b, len(b)) }
