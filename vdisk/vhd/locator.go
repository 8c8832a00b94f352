package vhd

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf16"

	"github.com/offvm/offvm/vdisk"
)

// maxLocatorLen bounds one locator's data: a path, never more than a few
// KiB (Windows reserves 4 KiB or 64 KiB of space for it).
const maxLocatorLen = 64 << 10

// parentLocator is one decoded parent locator.
type parentLocator struct {
	code string // "W2ru", "W2ku", "MacX", ...
	path string
}

// locators decodes the parent locators of a differencing header, in the
// order they should be tried: relative Windows path first (it survives a
// library being moved), then absolute, then Mac paths. Undecodable or
// out-of-file entries are skipped; the parent name is the caller's last
// resort.
func readLocators(f vdisk.File, fsize int64, h *header) []parentLocator {
	rank := map[string]int{"W2ru": 0, "Wi2r": 1, "W2ku": 2, "Wi2k": 3, "MacX": 4}
	var out []parentLocator
	for i := range h.Locators {
		e := &h.Locators[i]
		code := string(e.PlatformCode[:])
		if _, known := rank[code]; !known || e.PlatformDataLen == 0 || e.PlatformDataLen > maxLocatorLen {
			continue
		}
		if e.PlatformDataOff > uint64(fsize) || uint64(e.PlatformDataLen) > uint64(fsize)-e.PlatformDataOff {
			continue
		}
		buf := make([]byte, e.PlatformDataLen)
		if n, _ := f.ReadAt(buf, int64(e.PlatformDataOff)); n != len(buf) {
			continue
		}
		if p := decodeLocator(code, buf); p != "" {
			out = append(out, parentLocator{code: code, path: p})
		}
	}
	// Stable insertion sort by rank: at most eight entries.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && rank[out[j].code] < rank[out[j-1].code]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func decodeLocator(code string, b []byte) string {
	switch code {
	case "W2ru", "W2ku":
		u := make([]uint16, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			u = append(u, binary.LittleEndian.Uint16(b[i:]))
		}
		return strings.TrimRight(string(utf16.Decode(u)), "\x00")
	case "Wi2r", "Wi2k":
		// Deprecated ANSI paths: take them as bytes.
		return strings.TrimRight(string(b), "\x00")
	case "MacX":
		// A file URL, e.g. file://localhost/Users/me/parent.vhd.
		s := strings.TrimRight(string(b), "\x00")
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "" && u.Scheme != "file") {
			return ""
		}
		return u.Path
	}
	return ""
}

// openParent finds and opens the parent of a differencing image, checking
// that it is the disk this child was made from when the parent can say.
func (d *Disk) openParent(fsize int64, opts vdisk.Options) error {
	locs := readLocators(d.f, fsize, &d.hdr)
	var cands []string
	for _, l := range locs {
		cands = append(cands, l.path)
	}
	if name := d.hdr.parentName(); name != "" {
		cands = append(cands, name)
	}
	want := wantedParent(locs, d.hdr.parentName())
	if len(cands) == 0 {
		return fmt.Errorf("vhd %s: differencing image names no parent: %w", d.name, vdisk.ErrParentNotFound)
	}
	if opts.OpenParent == nil {
		return fmt.Errorf("vhd %s: parent %s: no way to open parents given: %w", d.name, want, vdisk.ErrParentNotFound)
	}
	path, ok := vdisk.ResolveParent(d.name, cands...)
	if !ok {
		return fmt.Errorf("vhd %s: parent %s not found (tried %s): %w", d.name, want, strings.Join(cands, ", "), vdisk.ErrParentNotFound)
	}
	p, err := opts.OpenParent(path)
	if err != nil {
		return fmt.Errorf("vhd %s: opening parent %s: %w", d.name, path, err)
	}
	if id, ok := p.(interface{ UniqueID() [16]byte }); ok && id.UniqueID() != d.hdr.ParentUniqueID {
		p.Close()
		return fmt.Errorf("vhd %s: parent %s has unique id %x, the child expects %x: %w",
			d.name, path, id.UniqueID(), d.hdr.ParentUniqueID, vdisk.ErrCorrupt)
	}
	d.parent, d.parentPath = p, path
	return nil
}

// wantedParent is the name to show a user for a missing parent: the
// absolute path if recorded, else whatever the image records.
func wantedParent(locs []parentLocator, name string) string {
	for _, l := range locs {
		if l.code == "W2ku" || l.code == "Wi2k" {
			return l.path
		}
	}
	if name != "" {
		return name
	}
	if len(locs) > 0 {
		return locs[0].path
	}
	return "(unnamed)"
}
