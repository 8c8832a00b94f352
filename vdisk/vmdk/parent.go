package vmdk

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/offvm/offvm/vdisk"
)

// openParent opens the image named by parentFileNameHint, after checking
// that the parent still has the content ID the child was made against: a
// parent changed since would give the child's reads silently wrong data.
func (d *Disk) openParent(opts vdisk.Options) error {
	if d.desc == nil || d.desc.parentHint == "" {
		return nil
	}
	hint := d.desc.parentHint
	if opts.OpenParent == nil {
		return fmt.Errorf("vmdk %s: parent %q (no way to open parents given): %w", d.name, hint, vdisk.ErrParentNotFound)
	}
	path, ok := vdisk.ResolveParent(d.name, hint)
	if !ok {
		return fmt.Errorf("vmdk %s: parent %q: %w", d.name, hint, vdisk.ErrParentNotFound)
	}
	if cid, ok, err := parentCID(path, opts); err != nil {
		return fmt.Errorf("vmdk %s: parent %s: %w", d.name, path, err)
	} else if ok && d.desc.parentCID != noParentCID && cid != d.desc.parentCID {
		return fmt.Errorf("vmdk %s: parent %s has content ID %08x, the child was made against %08x (the parent changed since): %w",
			d.name, path, cid, d.desc.parentCID, vdisk.ErrCorrupt)
	}
	p, err := opts.OpenParent(path)
	if err != nil {
		return fmt.Errorf("vmdk %s: opening parent %s: %w", d.name, path, err)
	}
	d.parent, d.parentPath = p, path
	return nil
}

// parentCID reads the CID of a VMDK parent; ok is false when the parent is
// not a VMDK or has no CID (qemu lets only VMDK parents back a VMDK).
func parentCID(path string, opts vdisk.Options) (cid uint32, ok bool, err error) {
	f, err := opts.Open(path, false)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	if !Match(f) {
		return 0, false, nil
	}
	p := &Disk{f: f, name: f.Name()}
	var magic [4]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil && err != io.EOF {
		return 0, false, err
	}
	if binary.LittleEndian.Uint32(magic[:]) == magicKDMV {
		sp, err := openSparse(f)
		if err != nil {
			return 0, false, err
		}
		if h := sp.hdr; h.DescriptorOffset != 0 && h.DescriptorSize != 0 {
			err = p.readEmbeddedDescriptor(sp, int64(h.DescriptorOffset), int64(h.DescriptorSize))
		}
		if err != nil || p.desc == nil {
			return 0, false, err
		}
	} else {
		size, err := f.Size()
		if err != nil {
			return 0, false, err
		}
		text := make([]byte, min(size, maxDescriptor))
		if _, err := f.ReadAt(text, 0); err != nil && err != io.EOF {
			return 0, false, err
		}
		if p.desc, err = parseDescriptor(p.name, text); err != nil {
			return 0, false, err
		}
	}
	return p.desc.cid, p.desc.hasCID, nil
}

// readParent reads the parent's bytes at virtual offset off; past the
// parent's end (a child may be larger) it reads zeros.
func (d *Disk) readParent(p []byte, off int64) error {
	avail := d.parent.Size() - off
	if avail <= 0 {
		clear(p)
		return nil
	}
	n := int(min(avail, int64(len(p))))
	if _, err := d.parent.ReadAt(p[:n], off); err != nil && err != io.EOF {
		return fmt.Errorf("vmdk %s: reading parent %s: %w", d.name, d.parentPath, err)
	}
	clear(p[n:])
	return nil
}
