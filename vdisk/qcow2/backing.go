package qcow2

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/offvm/offvm/vdisk"
)

// qemuFormats maps qemu's driver names (in the backing format extension) to
// the Info().Format names of this project.
var qemuFormats = map[string]string{
	"raw": "raw", "qcow2": "qcow2", "vpc": "vhd", "vhdx": "vhdx", "vmdk": "vmdk",
}

// openBacking opens the backing file named in the header, relative to the
// image's directory, through opts.OpenParent.
func (d *Disk) openBacking(opts vdisk.Options) error {
	bf := d.h.backingFile
	if bf == "" {
		return nil
	}
	if opts.OpenParent == nil {
		return fmt.Errorf("qcow2 %s: backing file %q: no way to open parents: %w", d.name, bf, vdisk.ErrParentNotFound)
	}
	path, ok := vdisk.ResolveParent(d.name, bf)
	if !ok {
		return fmt.Errorf("qcow2 %s: backing file %q not found (looked for %s): %w", d.name, bf, filepath.Join(filepath.Dir(d.name), bf), vdisk.ErrParentNotFound)
	}
	p, err := opts.OpenParent(path)
	if err != nil {
		return fmt.Errorf("qcow2 %s: backing file %s: %w", d.name, path, err)
	}
	// The declared format guards against a raw backing file whose content
	// happens to look like another container.
	want, known := qemuFormats[strings.ToLower(d.h.backingFormat)]
	if got := p.Info().Format; known && got != "" && got != want {
		p.Close()
		return fmt.Errorf("qcow2 %s: backing file %s is declared %q but opened as %q: %w", d.name, path, d.h.backingFormat, got, vdisk.ErrUnsupported)
	}
	d.parent, d.parentPath, d.parentSize = p, path, p.Size()
	return nil
}

// readParent fills p with the backing data at guest offset off: zeros where
// there is no backing file or it is shorter than the image.
func (d *Disk) readParent(p []byte, off int64) error {
	n := int64(0)
	if d.parent != nil && off < d.parentSize {
		n = min(int64(len(p)), d.parentSize-off)
		if _, err := d.parent.ReadAt(p[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("qcow2 %s: reading backing file %s at %d: %w", d.name, d.parentPath, off, err)
		}
	}
	clear(p[n:])
	return nil
}
