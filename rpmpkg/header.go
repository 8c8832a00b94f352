// Package rpmpkg lists the packages of an rpm database (Fedora, RHEL,
// SUSE guests), read offline: rpm's SQLite database (rpmdb.sqlite, rpm
// 4.16 and later) through modernc.org/sqlite, Berkeley DB Packages (older
// rpm) and ndb Packages.db (SUSE) by readers of their own, and each
// package's header blob by rpm's own header format.
package rpmpkg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrHeader marks a header blob that is not a valid rpm header.
var ErrHeader = errors.New("invalid rpm header")

// Package is one installed package.
type Package struct {
	Name    string
	Epoch   *int
	Version string
	Release string
	Arch    string
	Vendor  string
	// InstallTime is when rpm installed it (Unix seconds; 0 unknown).
	InstallTime int64
}

// EVR is the package's [epoch:]version-release, with the epoch whenever
// the header has one (as rpm's %|EPOCH?{%{EPOCH}:}:{}| query prints it).
func (p Package) EVR() string {
	v := p.Version
	if p.Release != "" {
		v += "-" + p.Release
	}
	if p.Epoch != nil {
		v = fmt.Sprint(*p.Epoch) + ":" + v
	}
	return v
}

// rpm header tags and types (rpm's rpmtag.h).
const (
	tagName        = 1000
	tagVersion     = 1001
	tagRelease     = 1002
	tagEpoch       = 1003
	tagInstallTime = 1008
	tagVendor      = 1011
	tagArch        = 1022

	typeInt32      = 4
	typeString     = 6
	typeI18NString = 9

	maxEntries = 1 << 16
	maxData    = 256 << 20
)

// ParseHeader reads the fields offvm shows from a header blob as the
// database stores it: entry count and data length (big-endian int32s),
// the 16-byte index entries, then the data store.
func ParseHeader(blob []byte) (Package, error) {
	var p Package
	if len(blob) < 8 {
		return p, fmt.Errorf("%d bytes: %w", len(blob), ErrHeader)
	}
	il, dl := binary.BigEndian.Uint32(blob), binary.BigEndian.Uint32(blob[4:])
	if il == 0 || il > maxEntries || dl > maxData || uint64(8+16*il)+uint64(dl) > uint64(len(blob)) {
		return p, fmt.Errorf("%d entries, %d data bytes in %d bytes: %w", il, dl, len(blob), ErrHeader)
	}
	index := blob[8 : 8+16*il]
	data := blob[8+16*il : 8+16*il+dl]
	for i := range int(il) {
		e := index[16*i:]
		tag, typ := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
		off, count := binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])
		if err := p.set(tag, typ, off, count, data); err != nil {
			return p, err
		}
	}
	if p.Name == "" {
		return p, fmt.Errorf("no package name: %w", ErrHeader)
	}
	return p, nil
}

func (p *Package) set(tag, typ, off, count uint32, data []byte) error {
	var dst *string
	switch tag {
	case tagName:
		dst = &p.Name
	case tagVersion:
		dst = &p.Version
	case tagRelease:
		dst = &p.Release
	case tagArch:
		dst = &p.Arch
	case tagVendor:
		dst = &p.Vendor
	case tagEpoch, tagInstallTime:
		if typ != typeInt32 || count < 1 || uint64(off)+4 > uint64(len(data)) {
			return fmt.Errorf("tag %d (type %d at %d): %w", tag, typ, off, ErrHeader)
		}
		v := binary.BigEndian.Uint32(data[off:])
		if tag == tagInstallTime {
			p.InstallTime = int64(v)
			return nil
		}
		e := int(int32(v))
		p.Epoch = &e
		return nil
	default:
		return nil
	}
	if typ != typeString && typ != typeI18NString {
		return fmt.Errorf("tag %d has type %d, not a string: %w", tag, typ, ErrHeader)
	}
	if uint64(off) >= uint64(len(data)) {
		return fmt.Errorf("tag %d at %d past the %d-byte data: %w", tag, off, len(data), ErrHeader)
	}
	s := data[off:]
	end := bytes.IndexByte(s, 0)
	if end < 0 {
		return fmt.Errorf("tag %d: unterminated string: %w", tag, ErrHeader)
	}
	*dst = string(s[:end])
	return nil
}
