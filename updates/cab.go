// Package updates reads Microsoft update packages (.msu and .cab), tells
// per image whether each is installed, not applicable, staged or needed
// (from the guest's Component Based Servicing registry), and stages
// needed ones for a first-boot install by the offvm-firstboot service.
package updates

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrCabinet marks a cabinet that is damaged or not a cabinet at all.
var ErrCabinet = errors.New("damaged cabinet")

// Cabinet compression types (CFFOLDER typeCompress, low nibble), MS-CAB 2.2.
const (
	compNone    = 0
	compMSZIP   = 1
	compQuantum = 2
	compLZX     = 3
)

// Header flags.
const (
	flagPrev    = 0x1
	flagNext    = 0x2
	flagReserve = 0x4
)

// Cabinet is one parsed cabinet file (MS-CAB): its folders (compressed
// streams) and the files stored in them.
type Cabinet struct {
	r        io.ReaderAt
	size     int64
	name     string
	folders  []folder
	Files    []CabFile
	dataRsv  int // bytes reserved in each CFDATA
	setChain bool
}

type folder struct {
	start    int64 // offset of the first CFDATA
	blocks   int
	compress uint16
}

// CabFile is one CFFILE entry.
type CabFile struct {
	Name   string
	Size   int64
	Offset int64 // in its folder's uncompressed stream
	Folder int
}

// maxCabEntries bounds what a header may claim before we allocate.
const maxCabEntries = 65535

// OpenCabinet parses the cabinet's headers; name is used in errors.
func OpenCabinet(r io.ReaderAt, size int64, name string) (*Cabinet, error) {
	c := &Cabinet{r: r, size: size, name: name}
	if err := c.parse(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrCabinet, err)
	}
	return c, nil
}

func (c *Cabinet) parse() error {
	var h [36]byte
	n, err := c.r.ReadAt(h[:], 0)
	if n < 4 || string(h[:4]) != "MSCF" {
		return fmt.Errorf("no MSCF signature: not a cabinet")
	}
	if n < len(h) {
		return fmt.Errorf("reading the header: %w", err)
	}
	le := binary.LittleEndian
	cbCabinet := int64(le.Uint32(h[8:]))
	coffFiles := int64(le.Uint32(h[16:]))
	if h[25] != 1 || h[24] != 3 {
		return fmt.Errorf("cabinet version %d.%d (only 1.3 exists)", h[25], h[24])
	}
	nFolders, nFiles, flags := int(le.Uint16(h[26:])), int(le.Uint16(h[28:])), le.Uint16(h[30:])
	if cbCabinet > c.size {
		return fmt.Errorf("header says %d bytes, the file has %d (truncated)", cbCabinet, c.size)
	}
	if nFolders == 0 && nFiles > 0 {
		return fmt.Errorf("%d files but no folder", nFiles)
	}
	off := int64(36)
	folderRsv := 0
	if flags&flagReserve != 0 {
		var rs [4]byte
		if _, err := c.r.ReadAt(rs[:], off); err != nil {
			return fmt.Errorf("reserve sizes: %w", err)
		}
		off += 4 + int64(le.Uint16(rs[:]))
		folderRsv, c.dataRsv = int(rs[2]), int(rs[3])
	}
	if flags&(flagPrev|flagNext) != 0 {
		// A file spanning cabinets needs the other cabinets; update
		// packages are single cabinets.
		return fmt.Errorf("part of a multi-cabinet set, which update packages never are")
	}
	for i := 0; i < nFolders; i++ {
		var f [8]byte
		if _, err := c.r.ReadAt(f[:], off); err != nil {
			return fmt.Errorf("folder %d: %w", i, err)
		}
		off += 8 + int64(folderRsv)
		fo := folder{start: int64(le.Uint32(f[:])), blocks: int(le.Uint16(f[4:])), compress: le.Uint16(f[6:])}
		if fo.start < off || fo.start > cbCabinet {
			return fmt.Errorf("folder %d: data at %d, outside the cabinet", i, fo.start)
		}
		c.folders = append(c.folders, fo)
	}
	return c.parseFiles(coffFiles, nFiles, cbCabinet)
}

func (c *Cabinet) parseFiles(off int64, n int, end int64) error {
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		var f [16]byte
		if _, err := c.r.ReadAt(f[:], off); err != nil {
			return fmt.Errorf("file entry %d: %w", i, err)
		}
		name, err := c.cString(off+16, end)
		if err != nil {
			return fmt.Errorf("file entry %d: %w", i, err)
		}
		off += 16 + int64(len(name)) + 1
		fi := int(le.Uint16(f[8:]))
		if fi >= 0xFFFD {
			return fmt.Errorf("file %q continues from or into another cabinet", name)
		}
		if fi >= len(c.folders) {
			return fmt.Errorf("file %q: folder %d of %d", name, fi, len(c.folders))
		}
		attribs := le.Uint16(f[14:])
		if attribs&0x80 == 0 || !utf8.ValidString(name) {
			name = latin1(name)
		}
		c.Files = append(c.Files, CabFile{Name: name, Size: int64(le.Uint32(f[:])), Offset: int64(le.Uint32(f[4:])), Folder: fi})
	}
	return nil
}

// cString reads a NUL-terminated name of at most 256 bytes (MS-CAB's limit).
func (c *Cabinet) cString(off, end int64) (string, error) {
	buf := make([]byte, 257)
	n, err := c.r.ReadAt(buf, off)
	if n == 0 && err != nil {
		return "", err
	}
	i := bytes.IndexByte(buf[:n], 0)
	if i < 0 || off+int64(i) >= end {
		return "", fmt.Errorf("name without its end")
	}
	return string(buf[:i]), nil
}

func latin1(s string) string {
	if isASCII(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Find returns the file whose name (case-insensitive, \ or / separated)
// matches, or nil.
func (c *Cabinet) Find(name string) *CabFile {
	for i := range c.Files {
		if strings.EqualFold(strings.ReplaceAll(c.Files[i].Name, `\`, "/"), strings.ReplaceAll(name, `\`, "/")) {
			return &c.Files[i]
		}
	}
	return nil
}

// Open returns a reader of one file's content, decompressing its folder
// from the start (cabinet folders are one stream) with bounded memory.
func (c *Cabinet) Open(f *CabFile) (io.Reader, error) {
	fo := c.folders[f.Folder]
	s, err := newFolderStream(c, fo, f.Folder)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.name, f.Name, err)
	}
	if _, err := io.CopyN(io.Discard, s, f.Offset); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.name, f.Name, errOrShort(err))
	}
	return &namedReader{r: io.LimitReader(s, f.Size), name: c.name + ": " + f.Name, left: f.Size}, nil
}

// ReadFile reads a whole file of at most max bytes.
func (c *Cabinet) ReadFile(f *CabFile, max int64) ([]byte, error) {
	if f.Size > max {
		return nil, fmt.Errorf("%s: %s: %d bytes, more than the %d a manifest may have", c.name, f.Name, f.Size, max)
	}
	r, err := c.Open(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// namedReader turns an early end into an error naming the file.
type namedReader struct {
	r    io.Reader
	name string
	left int64
}

func (n *namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	n.left -= int64(k)
	if err == io.EOF && n.left > 0 {
		return k, fmt.Errorf("%s: %w: %d bytes missing", n.name, ErrCabinet, n.left)
	}
	if err != nil && err != io.EOF {
		return k, fmt.Errorf("%s: %w", n.name, err)
	}
	return k, err
}

func errOrShort(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: the folder ends early", ErrCabinet)
	}
	return err
}
