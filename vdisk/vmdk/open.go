package vmdk

import (
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"

	"github.com/offvm/offvm/vdisk"
)

// extent is one piece of the virtual disk.
type extent struct {
	line    extentLine
	start   int64 // virtual byte offset
	size    int64 // bytes
	f       vdisk.File
	flatOff int64   // FLAT: byte offset of the extent in f
	sp      *sparse // SPARSE
}

// Open presents the VMDK in f as a disk. f is either a sparse extent with
// its descriptor embedded (monolithicSparse, streamOptimized) or a text
// descriptor naming extent files beside it.
func Open(f vdisk.File, opts vdisk.Options) (vdisk.Disk, error) {
	d := &Disk{f: f, name: f.Name(), files: []vdisk.File{f}}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("vmdk %s: %w", d.name, err)
	}
	var err error
	if m := binary.LittleEndian.Uint32(magic[:]); m == magicKDMV || m == magicCOWD {
		err = d.openSparseFile()
	} else {
		err = d.openDescriptorFile(opts)
	}
	if err == nil {
		err = d.openParent(opts)
	}
	if err != nil {
		d.closeExtents()
		return nil, err
	}
	d.decideWritable(opts)
	return d, nil
}

// openSparseFile opens a file that is itself a sparse extent. As qemu
// does, the extent comes from the header; the embedded descriptor gives
// only the create type, the CIDs and the parent.
func (d *Disk) openSparseFile() error {
	sp, err := openSparse(d.f)
	if err != nil {
		return err
	}
	if h := sp.hdr; h.DescriptorOffset != 0 && h.DescriptorSize != 0 {
		if err := d.readEmbeddedDescriptor(sp, int64(h.DescriptorOffset), int64(h.DescriptorSize)); err != nil {
			return err
		}
	}
	line := extentLine{access: "RW", kind: "SPARSE", sectors: sp.hdr.Capacity, file: filepath.Base(d.name)}
	if d.desc != nil && len(d.desc.extents) == 1 {
		line.access = d.desc.extents[0].access
	}
	d.extents = []*extent{{line: line, size: sp.capacity, f: d.f, sp: sp}}
	d.size = sp.capacity
	d.variant = "monolithicSparse"
	if d.desc != nil && d.desc.createType != "" {
		d.variant = d.desc.createType
	}
	return nil
}

func (d *Disk) readEmbeddedDescriptor(sp *sparse, sec, n int64) error {
	// sec and n come from the header as signed values: a negative one
	// must not reach the slice size or the offset
	if sec < 0 || n < 0 || sec > sp.fileSize/sector || n > maxDescriptor/sector {
		return fmt.Errorf("vmdk %s: embedded descriptor at sector %d (%d sectors) is outside the file or too large: %w", d.name, sec, n, vdisk.ErrCorrupt)
	}
	off := sec * sector
	text := make([]byte, min(n*sector, sp.fileSize-off))
	if _, err := d.f.ReadAt(text, off); err != nil && err != io.EOF {
		return fmt.Errorf("vmdk %s: reading embedded descriptor: %w", d.name, err)
	}
	desc, err := parseDescriptor(d.name, text)
	if err != nil {
		return err
	}
	d.desc, d.descAt = desc, off
	return nil
}

// openDescriptorFile opens a text descriptor and the extents it names.
func (d *Disk) openDescriptorFile(opts vdisk.Options) error {
	size, err := d.f.Size()
	if err != nil {
		return fmt.Errorf("vmdk %s: %w", d.name, err)
	}
	if size > maxDescriptor {
		return fmt.Errorf("vmdk %s: neither a sparse extent nor a descriptor (%d bytes of text is too large): %w", d.name, size, vdisk.ErrCorrupt)
	}
	text := make([]byte, size)
	if _, err := d.f.ReadAt(text, 0); err != nil && err != io.EOF {
		return fmt.Errorf("vmdk %s: reading descriptor: %w", d.name, err)
	}
	if d.desc, err = parseDescriptor(d.name, text); err != nil {
		return err
	}
	if len(d.desc.extents) == 0 {
		return fmt.Errorf("vmdk %s: descriptor names no extents: %w", d.name, vdisk.ErrCorrupt)
	}
	d.variant = d.desc.createType
	writable := opts.Writable && d.desc.createType != "streamOptimized"
	for _, line := range d.desc.extents {
		e, err := d.openExtent(line, opts, writable && line.access == "RW")
		if err != nil {
			return err
		}
		e.start = d.size
		if d.size += e.size; d.size > maxCapacity*sector {
			return fmt.Errorf("vmdk %s: extents add up to more than %d bytes: %w", d.name, int64(maxCapacity*sector), vdisk.ErrCorrupt)
		}
		d.extents = append(d.extents, e)
	}
	return nil
}

func (d *Disk) openExtent(line extentLine, opts vdisk.Options, writable bool) (*extent, error) {
	e := &extent{line: line, size: int64(line.sectors) * sector}
	switch line.kind {
	case "ZERO":
		return e, nil
	case "SPARSE", "FLAT", "VMFS", "VMFSRAW", "VMFSRDM":
	default:
		return nil, fmt.Errorf("vmdk %s: extent type %s (%q): %w", d.name, line.kind, line.file, vdisk.ErrUnsupported)
	}
	path := line.file
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(d.name), path)
	}
	f, err := opts.Open(path, writable)
	if err != nil {
		return nil, fmt.Errorf("vmdk %s: opening extent %s: %w", d.name, path, err)
	}
	d.files = append(d.files, f)
	e.f = f
	if line.kind != "SPARSE" {
		e.flatOff = int64(line.offset) * sector
		return e, nil
	}
	if e.sp, err = openSparse(f); err != nil {
		return nil, fmt.Errorf("vmdk %s: %w", d.name, err)
	}
	return e, nil
}

// decideWritable records why the disk refuses writes, if it does.
func (d *Disk) decideWritable(opts vdisk.Options) {
	stream := d.variant == "streamOptimized"
	for _, e := range d.extents {
		stream = stream || (e.sp != nil && e.sp.compressed)
	}
	switch {
	case stream:
		d.readOnly = "streamOptimized VMDK is read-only"
		return
	case !opts.Writable:
		d.readOnly = "opened read-only"
		return
	}
	for _, e := range d.extents {
		if e.line.access != "RW" {
			d.readOnly = fmt.Sprintf("extent %q is %s in the descriptor", e.line.file, e.line.access)
			return
		}
	}
}

// closeExtents closes the files Open opened when it fails; f stays open,
// it belongs to the caller until Open succeeds.
func (d *Disk) closeExtents() {
	for _, f := range d.files[1:] {
		f.Close()
	}
	if d.parent != nil {
		d.parent.Close()
	}
}
