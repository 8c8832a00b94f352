package vhdx

import (
	"fmt"
	"strings"

	"github.com/offvm/offvm/vdisk"
)

// dataWriteGUIDer is what a VHDX parent offers for the linkage check.
type dataWriteGUIDer interface{ DataWriteGUID() [16]byte }

// unwrapper lets a wrapping Disk (loop detection, caching) show the disk
// it wraps.
type unwrapper interface{ Unwrap() vdisk.Disk }

// openParent finds the parent from the locator's paths ([MS-VHDX]
// 2.6.2.6.1), opens it read-only and checks that it is the very image the
// child was made against: its DataWriteGuid must equal parent_linkage.
func (d *Disk) openParent() error {
	name := d.f.Name()
	loc := d.meta.parentLocator
	var cands []string
	for _, k := range []string{"relative_path", "volume_path", "absolute_win32_path"} {
		if v := loc[k]; v != "" {
			cands = append(cands, stripVolumePrefix(v))
		}
	}
	if len(cands) == 0 {
		return fmt.Errorf("vhdx %s: differencing image names no parent path: %w", name, vdisk.ErrCorrupt)
	}
	want, err := parseGUID(loc["parent_linkage"])
	if err != nil {
		return fmt.Errorf("vhdx %s: parent_linkage: %v: %w", name, err, vdisk.ErrCorrupt)
	}
	path, ok := vdisk.ResolveParent(name, cands...)
	if !ok || d.opts.OpenParent == nil {
		return fmt.Errorf("vhdx %s: parent %s: %w", name, strings.Join(cands, " or "), vdisk.ErrParentNotFound)
	}
	p, err := d.opts.OpenParent(path)
	if err != nil {
		return fmt.Errorf("vhdx %s: opening parent %s: %w", name, path, err)
	}
	if err := checkLinkage(name, path, p, want, loc["parent_linkage2"]); err != nil {
		p.Close()
		return err
	}
	d.parent, d.parentPath = p, path
	return nil
}

func checkLinkage(name, path string, p vdisk.Disk, want GUID, alt string) error {
	var inner vdisk.Disk = p
	for i := 0; i < 16; i++ {
		if _, ok := inner.(dataWriteGUIDer); ok {
			break
		}
		u, ok := inner.(unwrapper)
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	g, ok := inner.(dataWriteGUIDer)
	if !ok {
		return fmt.Errorf("vhdx %s: parent %s is not a VHDX image (format %q): %w", name, path, p.Info().Format, vdisk.ErrUnsupported)
	}
	have := GUID(g.DataWriteGUID())
	if have == want {
		return nil
	}
	if a, err := parseGUID(alt); err == nil && a == have {
		return nil
	}
	return fmt.Errorf("vhdx %s: parent %s has DataWriteGuid %s but the child was made against %s (the parent changed since): %w",
		name, path, have, want, vdisk.ErrCorrupt)
}

// stripVolumePrefix turns \\?\Volume{guid}\dir\p.vhdx into \dir\p.vhdx,
// a path the resolver can try beside the child.
func stripVolumePrefix(p string) string {
	const pre = `\\?\Volume{`
	if strings.HasPrefix(p, pre) {
		if i := strings.Index(p[len(pre):], `}`); i >= 0 {
			return p[len(pre)+i+1:]
		}
	}
	return p
}
