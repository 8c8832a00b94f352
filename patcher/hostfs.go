package patcher

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// hostfs is a directory of a mounted offvm tree (MNT/web01.vhdx/p3) read
// through ordinary file operations, for patch status and --dry-run (a
// bundle is never written through the tree: mounted.go). Inode numbers
// are the patcher's own, one per path it has met.
type hostfs struct {
	root string

	mu    sync.Mutex
	paths []string // ino-1 → host path
	inos  map[string]volume.Ino
}

func newHostFS(root string) *hostfs {
	return &hostfs{root: root, paths: []string{root}, inos: map[string]volume.Ino{root: 1}}
}

func (h *hostfs) Root() volume.Ino { return 1 }

func (h *hostfs) path(ino volume.Ino) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ino < 1 || int(ino) > len(h.paths) {
		return "", fmt.Errorf("inode %d: %w", ino, syscall.ESTALE)
	}
	return h.paths[ino-1], nil
}

func (h *hostfs) ino(p string) volume.Ino {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n, ok := h.inos[p]; ok {
		return n
	}
	h.paths = append(h.paths, p)
	h.inos[p] = volume.Ino(len(h.paths))
	return h.inos[p]
}

func (h *hostfs) stat(p string) (volume.Attr, error) {
	st, err := os.Lstat(p)
	if err != nil {
		return volume.Attr{}, err
	}
	return volume.Attr{Ino: h.ino(p), Mode: st.Mode(), Size: st.Size(), Mtime: st.ModTime()}, nil
}

func (h *hostfs) child(dir volume.Ino, name string) (string, error) {
	d, err := h.path(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, name), nil
}

func (h *hostfs) GetAttr(ino volume.Ino) (volume.Attr, error) {
	p, err := h.path(ino)
	if err != nil {
		return volume.Attr{}, err
	}
	return h.stat(p)
}

// Lookup relies on the tree for case-insensitive names on NTFS and FAT.
func (h *hostfs) Lookup(dir volume.Ino, name string) (volume.Attr, error) {
	p, err := h.child(dir, name)
	if err != nil {
		return volume.Attr{}, err
	}
	return h.stat(p)
}

func (h *hostfs) ReadDir(dir volume.Ino) ([]volume.DirEntry, error) {
	d, err := h.path(dir)
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(d)
	if err != nil {
		return nil, err
	}
	out := make([]volume.DirEntry, 0, len(des))
	for _, de := range des {
		out = append(out, volume.DirEntry{Name: de.Name(), Ino: h.ino(filepath.Join(d, de.Name())), Mode: de.Type()})
	}
	return out, nil
}

func (h *hostfs) ReadAt(ino volume.Ino, p []byte, off int64) (int, error) {
	path, err := h.path(ino)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.ReadAt(p, off)
}
