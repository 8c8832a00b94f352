package updates

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/offvm/offvm/internal/compress"
)

// maxBlock is the most a CFDATA block may hold uncompressed (MS-CAB).
const maxBlock = 32768

// folderStream yields a folder's uncompressed bytes block by block.
type folderStream struct {
	c     *Cabinet
	off   int64 // next CFDATA
	left  int   // blocks to go
	kind  uint16
	hist  []byte // the previous block, MSZIP's dictionary
	buf   []byte // decoded bytes not yet read
	block int
	// LZX: one decoder for the folder, fed by readBlock; ucbs are the
	// uncompressed sizes of blocks read but not yet decoded.
	lzx     *compress.CabLZX
	ucbs    []int
	read    int // CFDATA blocks read
	padding int
	folder  int
}

func newFolderStream(c *Cabinet, fo folder, index int) (*folderStream, error) {
	kind := fo.compress & 0x0f
	switch kind {
	case compNone, compMSZIP:
	case compLZX:
	case compQuantum:
		return nil, fmt.Errorf("Quantum-compressed folder: not supported")
	default:
		return nil, fmt.Errorf("%w: unknown compression type %d", ErrCabinet, kind)
	}
	s := &folderStream{c: c, off: fo.start, left: fo.blocks, kind: kind, folder: index}
	if kind == compLZX {
		lz, err := compress.NewCabLZX(uint(fo.compress>>8)&0x1f, s.moreLZX)
		if err != nil {
			return nil, err
		}
		s.lzx = lz
	}
	return s, nil
}

// moreLZX gives the LZX bit stream the next CFDATA's bytes, remembering
// its uncompressed size for the frame it holds; past the last block it
// gives a few zero bytes (the last symbols' lookahead), as cabextract does.
func (s *folderStream) moreLZX() ([]byte, error) {
	if s.read == s.blocksTotal() {
		if s.padding >= 8 {
			return nil, fmt.Errorf("%w: LZX data runs past the folder's end", ErrCabinet)
		}
		s.padding += 2
		return []byte{0, 0}, nil
	}
	data, ucb, err := s.readBlock()
	if err != nil {
		return nil, err
	}
	s.ucbs = append(s.ucbs, ucb)
	return data, nil
}

func (s *folderStream) blocksTotal() int { return s.c.folders[s.folder].blocks }

func (s *folderStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.left == 0 {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// next decodes one CFDATA block's worth of output.
func (s *folderStream) next() error {
	if s.lzx != nil {
		if len(s.ucbs) == 0 {
			data, ucb, err := s.readBlock()
			if err != nil {
				return err
			}
			s.lzx.Refill(data)
			s.ucbs = append(s.ucbs, ucb)
		}
		ucb := s.ucbs[0]
		s.ucbs = s.ucbs[1:]
		out, err := s.lzx.Frame(ucb)
		if err != nil {
			return fmt.Errorf("%w: LZX frame %d: %w", ErrCabinet, s.block, err)
		}
		s.left--
		s.block++
		s.buf = out
		return nil
	}
	data, ucb, err := s.readBlock()
	if err != nil {
		return err
	}
	out, err := s.decode(data, ucb)
	if err != nil {
		return fmt.Errorf("%w: data block %d: %w", ErrCabinet, s.block, err)
	}
	s.left--
	s.block++
	s.buf = out
	return nil
}

// readBlock reads and checks the next CFDATA block.
func (s *folderStream) readBlock() ([]byte, int, error) {
	var h [8]byte
	if _, err := s.c.r.ReadAt(h[:], s.off); err != nil {
		return nil, 0, fmt.Errorf("%w: data block %d: %w", ErrCabinet, s.read, err)
	}
	le := binary.LittleEndian
	sum, cb, ucb := le.Uint32(h[:]), int(le.Uint16(h[4:])), int(le.Uint16(h[6:]))
	if ucb > maxBlock || cb > maxBlock+6144 {
		return nil, 0, fmt.Errorf("%w: data block %d claims %d bytes", ErrCabinet, s.read, ucb)
	}
	data := make([]byte, cb)
	if _, err := s.c.r.ReadAt(data, s.off+8+int64(s.c.dataRsv)); err != nil {
		return nil, 0, fmt.Errorf("%w: data block %d: %w", ErrCabinet, s.read, err)
	}
	if sum != 0 && checksum(h[4:8], checksum(data, 0)) != sum {
		return nil, 0, fmt.Errorf("%w: data block %d fails its checksum", ErrCabinet, s.read)
	}
	s.off += 8 + int64(s.c.dataRsv) + int64(cb)
	s.read++
	return data, ucb, nil
}

func (s *folderStream) decode(data []byte, ucb int) ([]byte, error) {
	if s.kind == compNone {
		if len(data) != ucb {
			return nil, fmt.Errorf("stored block of %d bytes says %d", len(data), ucb)
		}
		return data, nil
	}
	// MSZIP: "CK", then a deflate stream whose window is the previous
	// block's output (MS-MCI 2.3).
	if len(data) < 2 || data[0] != 'C' || data[1] != 'K' {
		return nil, fmt.Errorf("MSZIP block without its CK signature")
	}
	fr := flate.NewReaderDict(bytes.NewReader(data[2:]), s.hist)
	out := make([]byte, ucb)
	if _, err := io.ReadFull(fr, out); err != nil {
		return nil, fmt.Errorf("MSZIP: %w", err)
	}
	s.hist = out
	return out, nil
}

// checksum is the CFDATA checksum of MS-CAB: 32-bit little-endian words
// XORed together, the 1-3 trailing bytes packed high to low.
func checksum(b []byte, seed uint32) uint32 {
	sum := seed
	n := len(b) / 4
	for i := 0; i < n; i++ {
		sum ^= binary.LittleEndian.Uint32(b[i*4:])
	}
	var ul uint32
	rest := b[n*4:]
	switch len(rest) {
	case 3:
		ul = uint32(rest[0])<<16 | uint32(rest[1])<<8 | uint32(rest[2])
	case 2:
		ul = uint32(rest[0])<<8 | uint32(rest[1])
	case 1:
		ul = uint32(rest[0])
	}
	return sum ^ ul
}
