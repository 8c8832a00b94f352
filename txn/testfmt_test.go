package txn

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/offvm/offvm/vdisk"
)

// tfmt is a container format that exists only for these tests. It stores
// the virtual disk in 4 KiB blocks appended to a second host file
// (<name>.data) and maps them with a table in the first, so a commit grows
// one file, rewrites a table and a header in the other, and alternately
// grows and shrinks the first: each Flush moves the table, between just
// after the header and the end of the file, truncating the file when the
// table moves back.
//
//	header file: [0,64) header, table of u64 data offsets (0 = unallocated)
//	header: "TFMT0001" | virtual size u64 | table offset u64 | data file name (len u16 + bytes)
//	data file:   [0,4096) "TFMTDATA" then blocks
const (
	tfmtMagic     = "TFMT0001"
	tfmtTableHome = 4096
	tfmtBlock     = 4096
)

type tfmtDisk struct {
	mu       sync.Mutex
	hdr      vdisk.File
	data     vdisk.File
	size     int64
	tableOff int64
	table    []uint64
	dataName string
	dataEnd  int64
	writable bool
	dirty    bool
}

// createTfmt makes an empty tfmt image of size bytes at path.
func createTfmt(path string, size int64) error {
	n := (size + tfmtBlock - 1) / tfmtBlock
	dataName := filepath.Base(path) + ".data"
	buf := make([]byte, tfmtTableHome+8*n)
	putTfmtHeader(buf, size, tfmtTableHome, dataName)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return err
	}
	d := make([]byte, tfmtBlock)
	copy(d, "TFMTDATA")
	return os.WriteFile(filepath.Join(filepath.Dir(path), dataName), d, 0o644)
}

func putTfmtHeader(b []byte, size, tableOff int64, dataName string) {
	copy(b, tfmtMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(size))
	binary.LittleEndian.PutUint64(b[16:], uint64(tableOff))
	binary.LittleEndian.PutUint16(b[24:], uint16(len(dataName)))
	copy(b[26:64], dataName)
}

// openTfmt is an OpenFunc for tfmt images.
func openTfmt(path string, opts vdisk.Options) (vdisk.Disk, error) {
	hf, err := opts.Open(path, opts.Writable)
	if err != nil {
		return nil, err
	}
	d, err := loadTfmt(hf, opts)
	if err != nil {
		hf.Close()
		return nil, err
	}
	return d, nil
}

func loadTfmt(hf vdisk.File, opts vdisk.Options) (*tfmtDisk, error) {
	var h [64]byte
	if _, err := hf.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("tfmt %s: header: %w", hf.Name(), err)
	}
	if string(h[:8]) != tfmtMagic {
		return nil, fmt.Errorf("tfmt %s: bad magic: %w", hf.Name(), vdisk.ErrCorrupt)
	}
	d := &tfmtDisk{hdr: hf, writable: opts.Writable}
	d.size = int64(binary.LittleEndian.Uint64(h[8:]))
	d.tableOff = int64(binary.LittleEndian.Uint64(h[16:]))
	nameLen := min(int(binary.LittleEndian.Uint16(h[24:])), 38)
	d.dataName = string(h[26 : 26+nameLen])
	hsize, _ := hf.Size()
	n := (d.size + tfmtBlock - 1) / tfmtBlock
	if d.size < 0 || d.tableOff < 64 || n > hsize/8 || d.tableOff+8*n > hsize {
		return nil, fmt.Errorf("tfmt %s: table out of file: %w", hf.Name(), vdisk.ErrCorrupt)
	}
	tb := make([]byte, 8*n)
	if _, err := hf.ReadAt(tb, d.tableOff); err != nil {
		return nil, fmt.Errorf("tfmt %s: table: %w", hf.Name(), err)
	}
	d.table = make([]uint64, n)
	for i := range d.table {
		d.table[i] = binary.LittleEndian.Uint64(tb[8*i:])
	}
	df, err := opts.Open(filepath.Join(filepath.Dir(hf.Name()), d.dataName), opts.Writable)
	if err != nil {
		return nil, err
	}
	d.data = df
	d.dataEnd, _ = df.Size()
	return d, nil
}

func (d *tfmtDisk) Size() int64      { return d.size }
func (d *tfmtDisk) Info() vdisk.Info { return vdisk.Info{Format: "tfmt"} }

func (d *tfmtDisk) ReadAt(p []byte, off int64) (int, error) {
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for done := 0; done < len(p); {
		pos := off + int64(done)
		n := min(len(p)-done, tfmtBlock-int(pos%tfmtBlock))
		e := d.table[pos/tfmtBlock]
		if e == 0 {
			clear(p[done : done+n])
		} else if _, err := d.data.ReadAt(p[done:done+n], int64(e)+pos%tfmtBlock); err != nil && err != io.EOF {
			return done, err
		}
		done += n
	}
	return len(p), nil
}

func (d *tfmtDisk) WriteAt(p []byte, off int64) (int, error) {
	if !d.writable {
		return 0, vdisk.ErrReadOnly
	}
	if err := vdisk.CheckRange(off, len(p), d.size); err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for done := 0; done < len(p); {
		pos := off + int64(done)
		n := min(len(p)-done, tfmtBlock-int(pos%tfmtBlock))
		if err := d.writeBlock(p[done:done+n], pos); err != nil {
			return done, err
		}
		done += n
	}
	return len(p), nil
}

func (d *tfmtDisk) writeBlock(p []byte, pos int64) error {
	idx := pos / tfmtBlock
	if d.table[idx] == 0 {
		blk := make([]byte, tfmtBlock)
		copy(blk[pos%tfmtBlock:], p)
		if _, err := d.data.WriteAt(blk, d.dataEnd); err != nil {
			return err
		}
		d.table[idx] = uint64(d.dataEnd)
		d.dataEnd += tfmtBlock
		d.dirty = true
		return nil
	}
	_, err := d.data.WriteAt(p, int64(d.table[idx])+pos%tfmtBlock)
	return err
}

// Flush moves the table: to the end of the file when it is at home, back
// home (and the file truncated after it) when it is not.
func (d *tfmtDisk) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dirty {
		return nil
	}
	tb := make([]byte, 8*len(d.table))
	for i, e := range d.table {
		binary.LittleEndian.PutUint64(tb[8*i:], e)
	}
	newOff := int64(tfmtTableHome)
	if d.tableOff == tfmtTableHome {
		newOff = tfmtTableHome + int64(len(tb))
	}
	if _, err := d.hdr.WriteAt(tb, newOff); err != nil {
		return err
	}
	var h [64]byte
	putTfmtHeader(h[:], d.size, newOff, d.dataName)
	if _, err := d.hdr.WriteAt(h[:], 0); err != nil {
		return err
	}
	if newOff == tfmtTableHome {
		if err := d.hdr.Truncate(newOff + int64(len(tb))); err != nil {
			return err
		}
	}
	d.tableOff, d.dirty = newOff, false
	return nil
}

func (d *tfmtDisk) Close() error {
	err := d.Flush()
	d.data.Close()
	d.hdr.Close()
	return err
}
