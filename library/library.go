// Package library finds the disk images in a library: a directory searched
// recursively, or one image file. Images are recognised by content, never
// by extension; offvm's own sidecar files are hidden.
package library

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/detect"
	"github.com/offvm/offvm/vmconfig"
)

// Entry is one name in a library directory that the tree shows.
type Entry struct {
	Name   string
	Path   string
	IsDir  bool
	Format string // container format for images, "" for directories and non-images named like images
}

// sidecarSuffixes are offvm's own files beside an image (journal, undo
// record, lock); they are never images and never shown.
var sidecarSuffixes = []string{".offvm-journal", ".offvm-undo", ".offvm-lock", ".offvm-tmp", ".offvm-history"}

// IsSidecar reports whether name is one of offvm's own files.
func IsSidecar(name string) bool {
	for _, s := range sidecarSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// imageSuffixes are the names images go by. Images are recognised by
// content; a file with one of these names that is not an image is still
// listed (as an image that cannot be opened) rather than hidden.
var imageSuffixes = []string{".vhd", ".vhdx", ".avhd", ".avhdx", ".vmdk", ".qcow2", ".qcow", ".img", ".raw", ".ova"}

// ImageName reports whether name is named like a disk image.
func ImageName(name string) bool {
	low := strings.ToLower(name)
	for _, s := range imageSuffixes {
		if strings.HasSuffix(low, s) {
			return true
		}
	}
	return false
}

// List returns the subdirectories and images of one directory, sorted by
// name. Files that are not images, and hidden names, are left out, except
// files named like images (Format "" then: they open with an error).
func List(dir string) ([]Entry, error) {
	if isOVA(dir) {
		return ovaDisks(dir) // an OVA is a folder of its disks
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || IsSidecar(name) {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p) // follow symlinks: a library may link images in
		if err != nil {
			continue
		}
		if st.IsDir() {
			out = append(out, Entry{Name: name, Path: p, IsDir: true})
			continue
		}
		if !st.Mode().IsRegular() {
			continue
		}
		ova, f, err := probe(p)
		if ova {
			// a broken one is an image that cannot be opened (OVAError)
			out = append(out, Entry{Name: name, Path: p, IsDir: OVAError(p) == nil, Format: "ova"})
			continue
		}
		switch {
		case err == nil && f != "":
			out = append(out, Entry{Name: name, Path: p, Format: f})
		case ImageName(name):
			// named as an image but not one (or unreadable): shown as a
			// broken image, so it does not silently vanish
			out = append(out, Entry{Name: name, Path: p})
		}
	}
	return hideExtents(out), nil
}

// probe tells whether the file at p is an OVA, else which image format it
// holds ("" for none), from one open of the file: ls lists every image
// of a library this way.
func probe(p string) (ova bool, format string, err error) {
	f, err := vdisk.OpenOSFile(p, false)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	if n, _ := f.ReadAt(head, 0); n == len(head) && vmconfig.IsOVA(head) {
		return true, "", nil
	}
	format, err = detect.ProbeFile(f)
	return false, format, err
}

// Walk returns every image under root (or root itself when it is a file),
// in path order.
func Walk(root string) ([]Entry, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() && isOVA(root) {
		if err := OVAError(root); err != nil {
			return []Entry{{Name: filepath.Base(root), Path: root, Format: "ova"}}, nil
		}
		return ovaDisks(root)
	}
	if !st.IsDir() {
		f, err := detect.Probe(root)
		if err != nil {
			return nil, err
		}
		if f == "" && !ImageName(root) {
			return nil, fmt.Errorf("%s: not a disk image (no container header, partition table or file system)", root)
		}
		return []Entry{{Name: filepath.Base(root), Path: root, Format: f}}, nil
	}
	var out []Entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		ents, err := List(p)
		if err != nil {
			return nil
		}
		for _, e := range ents {
			if !e.IsDir {
				out = append(out, e)
			} else if e.Format == "ova" {
				// WalkDir does not enter a file: list the OVA's disks here
				disks, _ := ovaDisks(e.Path)
				out = append(out, disks...)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}
