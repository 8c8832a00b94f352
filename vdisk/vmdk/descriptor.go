package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/offvm/offvm/vdisk"
)

const (
	maxDescriptor = 1 << 20 // qemu and VMware descriptors are a few hundred bytes
	noParentCID   = 0xffffffff
	maxExtents    = 1 << 16
)

// descriptor is the text that says what the disk is made of.
type descriptor struct {
	createType string
	cid        uint32
	hasCID     bool
	parentCID  uint32
	parentHint string
	extents    []extentLine
	// cidAt is the byte offset of the CID value in the text, cidLen its
	// length: first writes rewrite it in place, as VMware and qemu do.
	cidAt, cidLen int
}

// extentLine is one "RW 16384 SPARSE "name.vmdk" 0" line.
type extentLine struct {
	access  string // RW, RDONLY, NOACCESS
	sectors uint64
	kind    string // SPARSE, FLAT, ZERO, VMFS, VMFSSPARSE, VMFSRDM, VMFSRAW, SESPARSE
	file    string
	offset  uint64 // sectors, FLAT only
}

// parseDescriptor reads descriptor text; name is used in errors.
func parseDescriptor(name string, text []byte) (*descriptor, error) {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	d := &descriptor{parentCID: noParentCID}
	pos := 0
	for lineNo := 1; pos < len(text); lineNo++ {
		end := bytes.IndexByte(text[pos:], '\n')
		if end < 0 {
			end = len(text) - pos
		}
		line := string(text[pos : pos+end])
		start := pos
		pos += end + 1
		if err := d.parseLine(line, start); err != nil {
			return nil, fmt.Errorf("vmdk %s: descriptor line %d: %w", name, lineNo, err)
		}
	}
	return d, nil
}

func (d *descriptor) parseLine(raw string, at int) error {
	line := strings.TrimSpace(strings.TrimRight(raw, "\r"))
	if line == "" || line[0] == '#' {
		return nil
	}
	if first, _, _ := strings.Cut(line, " "); first == "RW" || first == "RDONLY" || first == "NOACCESS" {
		if len(d.extents) >= maxExtents {
			return fmt.Errorf("more than %d extents: %w", maxExtents, vdisk.ErrUnsupported)
		}
		e, err := parseExtentLine(line)
		if err != nil {
			return err
		}
		d.extents = append(d.extents, e)
		return nil
	}
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return nil // unknown syntax: VMware ignores it too
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	value = strings.Trim(value, `"`)
	// An unreadable CID only disables the checks that use it.
	switch strings.ToLower(key) {
	case "createtype":
		d.createType = value
	case "cid":
		var err error
		d.cid, err = parseCID(value)
		d.hasCID = err == nil
		if d.hasCID {
			// Where the value sits in the raw text, for the in-place rewrite.
			eq := strings.IndexByte(raw, '=')
			rel := strings.Index(raw[eq:], value)
			d.cidAt, d.cidLen = at+eq+rel, len(value)
		}
	case "parentcid":
		if cid, err := parseCID(value); err == nil {
			d.parentCID = cid
		}
	case "parentfilenamehint":
		d.parentHint = value
	}
	return nil
}

func parseCID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("content ID %q is not 32-bit hexadecimal: %w", s, vdisk.ErrCorrupt)
	}
	return uint32(v), nil
}

// parseExtentLine splits "ACCESS SECTORS TYPE ["FILE" [OFFSET]]"; the file
// name is quoted and may hold spaces.
func parseExtentLine(line string) (extentLine, error) {
	var e extentLine
	head, quoted, hasFile := strings.Cut(line, `"`)
	f := strings.Fields(head)
	if len(f) != 3 {
		return e, fmt.Errorf("extent %q: want access, size and type: %w", line, vdisk.ErrCorrupt)
	}
	e.access, e.kind = f[0], strings.ToUpper(f[2])
	var err error
	if e.sectors, err = strconv.ParseUint(f[1], 10, 64); err != nil || e.sectors > maxCapacity {
		return e, fmt.Errorf("extent %q: bad size: %w", line, vdisk.ErrCorrupt)
	}
	if !hasFile {
		if e.kind != "ZERO" {
			return e, fmt.Errorf("extent %q: no file name: %w", line, vdisk.ErrCorrupt)
		}
		return e, nil
	}
	file, rest, ok := strings.Cut(quoted, `"`)
	if !ok || file == "" {
		return e, fmt.Errorf("extent %q: unterminated or empty file name: %w", line, vdisk.ErrCorrupt)
	}
	e.file = file
	if rest = strings.TrimSpace(rest); rest != "" {
		if e.offset, err = strconv.ParseUint(strings.Fields(rest)[0], 10, 64); err != nil || e.offset > maxCapacity {
			return e, fmt.Errorf("extent %q: bad offset: %w", line, vdisk.ErrCorrupt)
		}
	}
	return e, nil
}
