// Package diskfsvol serves go-diskfs's ISO 9660 reader through the volume
// interface, read-only. go-diskfs is path-based; this adapter keeps the map
// between inode numbers and paths that the FUSE layer needs. (ext2/3/4 have
// offvm's own reader, package ext.)
package diskfsvol

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"sync"
	"syscall"

	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/offvm/offvm/volume"
)

// FS is a read-only volume served by a go-diskfs reader.
type FS struct {
	fsys  filesystem.FileSystem
	typ   string
	label string

	mu      sync.Mutex
	paths   map[volume.Ino]string // ino → one path of it ("" = root)
	inos    map[string]volume.Ino // path → ino
	nextIno volume.Ino
	handles map[volume.Ino]*handle
}

type handle struct {
	mu sync.Mutex
	f  filesystem.File
}

// OpenISO reads an ISO 9660 file system (with Rock Ridge or Joliet).
func OpenISO(dev volume.Device) (*FS, error) {
	fsys, err := iso9660.Read(&storage{dev: dev}, dev.Size(), 0, 2048)
	if err != nil {
		return nil, fmt.Errorf("iso9660: %w", err)
	}
	return newFS(fsys, "iso9660"), nil
}

func newFS(fsys filesystem.FileSystem, typ string) *FS {
	return &FS{
		fsys: fsys, typ: typ, label: trimLabel(fsys.Label()),
		paths:   map[volume.Ino]string{1: ""},
		inos:    map[string]volume.Ino{"": 1},
		nextIno: 2, handles: map[volume.Ino]*handle{},
	}
}

func trimLabel(s string) string {
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == 0) {
		s = s[:len(s)-1]
	}
	return s
}

func (f *FS) Type() string     { return f.typ }
func (f *FS) Label() string    { return f.label }
func (f *FS) Root() volume.Ino { return 1 }

func (f *FS) pathOf(ino volume.Ino) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.paths[ino]
	if !ok {
		return "", syscall.ESTALE
	}
	return p, nil
}

// inoFor assigns inode numbers in the order paths are first seen: stable
// for the life of the mount, which is all FUSE needs.
func (f *FS) inoFor(p string) volume.Ino {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ino, ok := f.inos[p]; ok {
		return ino
	}
	ino := f.nextIno
	f.nextIno++
	f.inos[p] = ino
	f.paths[ino] = p
	return ino
}

// diskfsPath turns our relative path into what go-diskfs expects: an
// io/fs path ("." for the root, no leading slash).
func diskfsPath(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func (f *FS) stat(p string) (volume.Attr, error) {
	fi, err := f.fsys.Stat(diskfsPath(p))
	if err != nil {
		if p == "" {
			return volume.Attr{Ino: 1, Mode: os.ModeDir | 0o555, Nlink: 2}, nil
		}
		return volume.Attr{}, fmt.Errorf("%s %s: %v: %w", f.typ, p, err, syscall.ENOENT)
	}
	a := volume.Attr{Ino: f.inoFor(p), Mode: fi.Mode(), Size: fi.Size(), Nlink: 1, Mtime: fi.ModTime(), Atime: fi.ModTime(), Ctime: fi.ModTime()}
	if fi.IsDir() {
		a.Mode |= os.ModeDir
		a.Size = 0
	}
	if a.Mode&0o777 == 0 {
		a.Mode |= 0o444
		if fi.IsDir() {
			a.Mode |= 0o111
		}
	}
	if a.Blocks == 0 {
		a.Blocks = (a.Size + 511) / 512
	}
	return a, nil
}

func (f *FS) GetAttr(ino volume.Ino) (volume.Attr, error) {
	p, err := f.pathOf(ino)
	if err != nil {
		return volume.Attr{}, err
	}
	a, err := f.stat(p)
	a.Ino = ino
	return a, err
}

// Lookup is case-sensitive: ISO names are exact.
func (f *FS) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	p, err := f.pathOf(dir)
	if err != nil {
		return volume.Attr{}, err
	}
	ents, err := f.ReadDir(dir)
	if err != nil {
		return volume.Attr{}, err
	}
	for _, e := range ents {
		if e.Name == name {
			return f.stat(path.Join(p, name))
		}
	}
	return volume.Attr{}, syscall.ENOENT
}

func (f *FS) ReadDir(dir volume.Ino) ([]volume.DirEntry, error) {
	p, err := f.pathOf(dir)
	if err != nil {
		return nil, err
	}
	ents, err := f.fsys.ReadDir(diskfsPath(p))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %w", f.typ, p, err, syscall.EIO)
	}
	out := make([]volume.DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, volume.DirEntry{Name: e.Name(), Ino: f.inoFor(path.Join(p, e.Name())), Mode: e.Type() & iofs.ModeType})
	}
	return out, nil
}

func (f *FS) handle(ino volume.Ino) (*handle, error) {
	f.mu.Lock()
	h, ok := f.handles[ino]
	p, known := f.paths[ino]
	f.mu.Unlock()
	if ok {
		return h, nil
	}
	if !known {
		return nil, syscall.ESTALE
	}
	file, err := f.fsys.OpenFile(diskfsPath(p), os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %w", f.typ, p, err, syscall.EIO)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.handles[ino]; ok {
		file.Close()
		return h, nil
	}
	h = &handle{f: file}
	f.handles[ino] = h
	return h, nil
}

func (f *FS) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	h, err := f.handle(ino)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.f.Seek(off, io.SeekStart); err != nil {
		return 0, fmt.Errorf("%s: seek: %v: %w", f.typ, err, syscall.EIO)
	}
	n, err := io.ReadFull(h.f, p)
	if errors.Is(err, io.ErrUnexpectedEOF) || (err == io.EOF) {
		return n, io.EOF
	}
	if err != nil {
		return n, fmt.Errorf("%s: read: %v: %w", f.typ, err, syscall.EIO)
	}
	return n, nil
}

// Readlink: Rock Ridge links are not offered by go-diskfs's reader.
func (f *FS) Readlink(ino volume.Ino) (string, error) {
	return "", syscall.EINVAL
}

func (f *FS) ListXattr(volume.Ino) ([]string, error)      { return nil, nil }
func (f *FS) GetXattr(volume.Ino, string) ([]byte, error) { return nil, syscall.ENODATA }
func (f *FS) StatFS() (volume.StatFS, error) {
	return volume.StatFS{BlockSize: 4096, NameMaxLen: 255}, nil
}
