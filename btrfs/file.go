package btrfs

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"sort"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"github.com/offvm/offvm/volume"
)

const (
	extInline   = 0
	extRegular  = 1
	extPrealloc = 2

	compNone = 0
	compZlib = 1
	compLZO  = 2
	compZstd = 3

	maxRamBytes = 1 << 20 // btrfs compresses at most 128 KiB at a time; guard
)

// fileExtent is one EXTENT_DATA item of a file.
type fileExtent struct {
	off      uint64 // file offset
	typ      uint8
	comp     uint8
	ramBytes uint64
	inline   []byte
	diskAddr uint64 // logical; 0 for a hole
	diskLen  uint64
	extOff   uint64 // offset into the (decompressed) extent
	numBytes uint64
}

func (e fileExtent) length() uint64 {
	if e.typ == extInline {
		return e.ramBytes
	}
	return e.numBytes
}

func (f *FS) extents(ino volume.Ino) ([]fileExtent, *inodeItem, error) {
	in, t, err := f.inode(ino)
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	ex, ok := f.exts[ino]
	f.mu.Unlock()
	if ok {
		return ex, in, nil
	}
	sub, obj := f.split(ino)
	var perr error
	err = f.walk(t, key{obj, extentDataKey, 0}, key{obj, extentDataKey, ^uint64(0)}, func(k key, d []byte) bool {
		if len(d) < 21 {
			perr = fmt.Errorf("extent item of %d bytes: %w", len(d), ErrCorrupt)
			return false
		}
		e := fileExtent{off: k.off, ramBytes: le.Uint64(d[8:]), comp: d[16], typ: d[20]}
		if d[17] != 0 || le.Uint16(d[18:]) != 0 {
			perr = fmt.Errorf("encrypted or encoded extent: %w", syscall.EOPNOTSUPP)
			return false
		}
		switch e.typ {
		case extInline:
			e.inline = d[21:]
		case extRegular, extPrealloc:
			if len(d) < 53 {
				perr = fmt.Errorf("extent item of %d bytes: %w", len(d), ErrCorrupt)
				return false
			}
			e.diskAddr, e.diskLen, e.extOff, e.numBytes = le.Uint64(d[21:]), le.Uint64(d[29:]), le.Uint64(d[37:]), le.Uint64(d[45:])
		default:
			perr = fmt.Errorf("extent type %d: %w", e.typ, ErrCorrupt)
			return false
		}
		ex = append(ex, e)
		return len(ex) < 1<<24
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, nil, errno(fmt.Errorf("btrfs: inode %d/%d extents: %w", sub, obj, err))
	}
	sort.Slice(ex, func(i, j int) bool { return ex[i].off < ex[j].off })
	f.mu.Lock()
	if len(f.exts) > 4096 {
		clear(f.exts)
	}
	f.exts[ino] = ex
	f.mu.Unlock()
	return ex, in, nil
}

func (f *FS) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	ex, in, err := f.extents(ino)
	if err != nil {
		return 0, err
	}
	if in.mode&syscall.S_IFMT == syscall.S_IFDIR {
		return 0, syscall.EISDIR
	}
	if off < 0 || uint64(off) >= in.size {
		return 0, io.EOF
	}
	n := int(min(uint64(len(p)), in.size-uint64(off)))
	clear(p[:n]) // holes (no-holes file systems have no items for them)
	for _, e := range ex {
		lo, hi := max(e.off, uint64(off)), min(e.off+e.length(), uint64(off)+uint64(n))
		if lo >= hi {
			continue
		}
		if err := f.readExtent(in, e, p[lo-uint64(off):hi-uint64(off)], lo-e.off); err != nil {
			sub, obj := f.split(ino)
			return 0, errno(fmt.Errorf("btrfs: inode %d/%d at offset %d: %w", sub, obj, lo, err))
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readExtent fills p with the extent's bytes from rel on.
func (f *FS) readExtent(in *inodeItem, e fileExtent, p []byte, rel uint64) error {
	switch {
	case e.typ == extInline:
		data := e.inline
		if e.comp != compNone {
			var err error
			if data, err = decompress(e.comp, data, e.ramBytes, f.sb.sectorSize); err != nil {
				return err
			}
		}
		if rel < uint64(len(data)) {
			copy(p, data[rel:])
		}
		return nil
	case e.typ == extPrealloc || e.diskAddr == 0:
		return nil // zeros
	case e.comp != compNone:
		if e.diskLen > maxRamBytes || e.ramBytes > maxRamBytes {
			return fmt.Errorf("compressed extent of %d/%d bytes: %w", e.diskLen, e.ramBytes, ErrCorrupt)
		}
		raw := make([]byte, e.diskLen)
		if err := f.readData(in, raw, e.diskAddr); err != nil {
			return err
		}
		data, err := decompress(e.comp, raw, e.ramBytes, f.sb.sectorSize)
		if err != nil {
			return err
		}
		if s := e.extOff + rel; s < uint64(len(data)) {
			copy(p, data[s:])
		}
		return nil
	}
	// uncompressed: read whole sectors so that each can be checked
	ss := uint64(f.sb.sectorSize)
	start := e.diskAddr + e.extOff + rel
	aligned := start - (start-e.diskAddr)%ss
	end := start + uint64(len(p))
	end += (ss - (end-e.diskAddr)%ss) % ss
	if end-aligned > 1<<30 {
		return fmt.Errorf("read of %d bytes: %w", end-aligned, ErrCorrupt)
	}
	buf := make([]byte, end-aligned)
	if err := f.readData(in, buf, aligned); err != nil {
		return err
	}
	copy(p, buf[start-aligned:])
	return nil
}

// readData reads sector-aligned data at logical addr and checks it
// against the checksum tree (files marked nodatasum have none).
func (f *FS) readData(in *inodeItem, b []byte, addr uint64) error {
	if err := f.readLogical(b, addr); err != nil {
		return err
	}
	if in.flags&inodeNoDataSum != 0 || f.csums == nil {
		return nil
	}
	return f.verify(b, addr)
}

func (f *FS) verify(b []byte, addr uint64) error {
	ss, cs := uint64(f.sb.sectorSize), uint64(f.sb.csumSize())
	span := uint64(f.sb.nodeSize) / cs * ss // no csum item covers more
	lo := key{csumObjectID, csumItemKey, max(addr, span) - span}
	hi := key{csumObjectID, csumItemKey, addr + uint64(len(b))}
	var bad error
	err := f.walk(*f.csums, lo, hi, func(k key, d []byte) bool {
		for i := uint64(0); i < uint64(len(d))/cs; i++ {
			sec := k.off + i*ss
			if sec < addr || sec+ss > addr+uint64(len(b)) {
				continue
			}
			o := sec - addr
			if !bytes.Equal(f.sb.csum(b[o : o+ss])[:cs], d[i*cs:(i+1)*cs]) {
				bad = fmt.Errorf("data checksum mismatch at logical %d: %w", sec, ErrCorrupt)
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return bad
}

// decompress expands one compressed extent to ram bytes.
func decompress(comp uint8, b []byte, ram uint64, sector uint32) ([]byte, error) {
	if ram > maxRamBytes {
		return nil, fmt.Errorf("extent of %d bytes uncompressed: %w", ram, ErrCorrupt)
	}
	var out []byte
	var err error
	switch comp {
	case compZlib:
		var r io.ReadCloser
		if r, err = zlib.NewReader(bytes.NewReader(b)); err == nil {
			out, err = io.ReadAll(io.LimitReader(r, int64(ram)))
		}
	case compZstd:
		// a stream, not DecodeAll: the frame is followed by padding
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20)); err == nil {
			out, err = io.ReadAll(io.LimitReader(d, int64(ram)))
			d.Close()
		}
	case compLZO:
		out, err = lzoExtent(b, ram, sector)
	default:
		return nil, fmt.Errorf("compression %d: %w", comp, ErrCorrupt)
	}
	// a stream is followed by padding up to the sector, and its last
	// sector's data may stop short of it (the file ends there): what
	// decoded before the padding is the extent
	if err != nil && (len(out) == 0 || ram-min(uint64(len(out)), ram) >= uint64(sector)) {
		return nil, fmt.Errorf("decompressing (type %d): %v: %w", comp, err, ErrCorrupt)
	}
	return out[:min(uint64(len(out)), ram)], nil
}
