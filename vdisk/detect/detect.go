// Package detect opens a disk image by its content, whatever its name:
// it asks each container format whether the file is one of its own, and
// follows parent chains with loop and depth checks.
package detect

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/raw"
)

// maxChain bounds parent chains: real ones are a few links long, and a
// bound turns a loop that escaped the path check into an error.
const maxChain = 32

// format is one container format as detect sees it.
type format struct {
	name  string
	match func(vdisk.File) bool
	open  func(vdisk.File, vdisk.Options) (vdisk.Disk, error)
}

// formats are tried in order; raw is the fallback and not listed.
var formats []format

// Options tune Open.
type Options struct {
	Writable bool
	// OpenFile, when set, replaces the OS for every host file of the image
	// and its parents (the transaction layer stages writes through it).
	OpenFile func(path string, writable bool) (vdisk.File, error)
}

// Open opens the image at path. Parents are opened read-only.
func Open(path string, opts Options) (vdisk.Disk, error) {
	return openChain(path, opts, nil)
}

func openChain(path string, opts Options, seen []string) (vdisk.Disk, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for _, s := range seen {
		if sameFile(s, abs) {
			return nil, fmt.Errorf("%s: backing chain loops back to %s: %w", seen[0], abs, vdisk.ErrCorrupt)
		}
	}
	if len(seen) >= maxChain {
		return nil, fmt.Errorf("%s: backing chain longer than %d images: %w", seen[0], maxChain, vdisk.ErrCorrupt)
	}
	seen = append(seen, abs)
	vo := vdisk.Options{Writable: opts.Writable, OpenFile: opts.OpenFile}
	f, err := vo.Open(abs, opts.Writable)
	if err != nil {
		return nil, err
	}
	vo.OpenParent = func(parent string) (vdisk.Disk, error) {
		if _, err := os.Stat(parent); err != nil {
			return nil, fmt.Errorf("%s: parent %s: %w", abs, parent, vdisk.ErrParentNotFound)
		}
		po := opts
		po.Writable = false
		return openChain(parent, po, seen)
	}
	for _, fm := range formats {
		if fm.match(f) {
			d, err := fm.open(f, vo)
			if err != nil {
				f.Close()
				return nil, err
			}
			return d, nil
		}
	}
	return raw.Open(f, vo)
}

// Probe tells whether the file at path is a disk image, and of which
// format, reading only its headers. Files that are none of the container
// formats count as raw images only when they start with a partition table
// or a file system; anything else is "" (not an image).
func Probe(path string) (string, error) {
	f, err := vdisk.OpenOSFile(path, false)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ProbeFile(f)
}

// ProbeFile is Probe of a file already open.
func ProbeFile(f vdisk.File) (string, error) {
	for _, fm := range formats {
		if fm.match(f) {
			return fm.name, nil
		}
	}
	if looksLikeRawDisk(f) {
		return "raw", nil
	}
	return "", nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return os.SameFile(sa, sb)
}
