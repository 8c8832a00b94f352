package fat

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/offvm/offvm/internal/devio"
	"github.com/offvm/offvm/volume"
)

func (v *Volume) writable() error {
	if v.ro {
		return fmt.Errorf("fat: volume opened read-only: %w", syscall.EROFS)
	}
	return nil
}

// newEnt is a fresh 8.3 entry stamped with now.
func newEnt(attr byte) dirent {
	d, t, tenth := encodeTime(time.Now())
	return dirent{attr: attr, crtTenth: tenth, crtTime: t, crtDate: d, accDate: d, wrtTime: t, wrtDate: d}
}

// Create makes an empty file. A mode without owner write sets the
// read-only attribute.
func (v *Volume) Create(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return volume.Attr{}, err
	}
	d, _, err := v.getDir(dir)
	if err != nil {
		return volume.Attr{}, err
	}
	attr := byte(attrArchive)
	if mode&0o200 == 0 {
		attr |= attrReadOnly
	}
	n, err := v.addEntry(d, name, newEnt(attr), nil)
	if err != nil {
		return volume.Attr{}, err
	}
	return v.attr(n), v.flushMeta()
}

// Mkdir makes a directory with its "." and ".." entries. ".." of a child
// of the root holds cluster 0 on every FAT type (fatgen103).
func (v *Volume) Mkdir(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return volume.Attr{}, err
	}
	p, pd, err := v.getDir(dir)
	if err != nil {
		return volume.Attr{}, err
	}
	if err := checkName(name); err != nil {
		return volume.Attr{}, err
	}
	if c := pd.byName[fold(name)]; c != nil {
		return volume.Attr{}, fmt.Errorf("fat: %q exists (as %q): %w", name, c.name, syscall.EEXIST)
	}
	cs, err := v.allocate(1)
	if err != nil {
		return volume.Attr{}, err
	}
	ent := newEnt(attrDir)
	ent.cluster = cs[0]
	buf := make([]byte, v.g.clusterSize)
	dot, dotdot := ent, ent
	dot.name, dotdot.name = pad83(".", ""), pad83("..", "")
	dotdot.cluster = v.dirCluster(p)
	dot.encode(buf[0:])
	dotdot.encode(buf[direntSize:])
	if err := devio.Write(v.dev, buf, v.g.clusterOffset(cs[0])); err != nil {
		v.release(cs)
		return volume.Attr{}, fmt.Errorf("fat: writing directory %q: %w", name, err)
	}
	n, err := v.addEntry(p, name, ent, nil)
	if err != nil {
		v.release(cs)
		return volume.Attr{}, err
	}
	n.children = map[int]*node{}
	v.cacheDir(n, &dirData{clusters: cs, data: buf, list: []*node{}, byName: map[string]*node{}})
	return v.attr(n), v.flushMeta()
}

// dirCluster is what ".." of a child of p holds: 0 for the root.
func (v *Volume) dirCluster(p *node) uint32 {
	if p == v.root {
		return 0
	}
	return p.ent.cluster
}

// lookupChild finds a live child by name.
func (v *Volume) lookupChild(dir volume.Ino, name string) (*node, *node, error) {
	d, dd, err := v.getDir(dir)
	if err != nil {
		return nil, nil, err
	}
	n := dd.byName[fold(name)]
	if n == nil {
		return d, nil, fmt.Errorf("fat: %q: %w", name, syscall.ENOENT)
	}
	return d, n, nil
}

// Unlink removes a file and frees its clusters.
func (v *Volume) Unlink(dir volume.Ino, name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return err
	}
	_, n, err := v.lookupChild(dir, name)
	if err != nil {
		return err
	}
	if n.isDir() {
		return fmt.Errorf("fat: %q: %w", name, syscall.EISDIR)
	}
	if err := v.remove(n); err != nil {
		return err
	}
	return v.flushMeta()
}

// Rmdir removes an empty directory.
func (v *Volume) Rmdir(dir volume.Ino, name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return err
	}
	_, n, err := v.lookupChild(dir, name)
	if err != nil {
		return err
	}
	if err := v.checkEmptyDir(n); err != nil {
		return err
	}
	if err := v.remove(n); err != nil {
		return err
	}
	return v.flushMeta()
}

func (v *Volume) checkEmptyDir(n *node) error {
	if !n.isDir() {
		return fmt.Errorf("fat: %q: %w", n.name, syscall.ENOTDIR)
	}
	d, err := v.loadDir(n)
	if err != nil {
		return err
	}
	if len(d.list) > 0 {
		return fmt.Errorf("fat: directory %q: %w", n.name, syscall.ENOTEMPTY)
	}
	return nil
}

// remove drops a node's entry and frees its clusters.
func (v *Volume) remove(n *node) error {
	var chain []uint32
	var err error
	if n.isDir() {
		var d *dirData
		if d, err = v.loadDir(n); err != nil {
			return err
		}
		chain = d.clusters
	} else if chain, err = v.fileChain(n); err != nil {
		return err
	}
	if err := v.dropEntry(n); err != nil {
		return err
	}
	v.release(chain)
	n.gone = true
	v.uncache(n)
	delete(v.nodes, n.ino)
	return nil
}

// SetTimes sets the access date and the modification time (2 s steps).
func (v *Volume) SetTimes(ino volume.Ino, atime, mtime *time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.writable(); err != nil {
		return err
	}
	n, err := v.get(ino)
	if err != nil {
		return err
	}
	if atime != nil {
		n.ent.accDate, _, _ = encodeTime(*atime)
	}
	if mtime != nil {
		n.ent.wrtDate, n.ent.wrtTime, _ = encodeTime(*mtime)
	}
	return v.writeEnt(n)
}

// Sync writes pending FAT and FSInfo changes. Directory entries and file
// data are written as they change.
func (v *Volume) Sync() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ro {
		return nil
	}
	return v.flushMeta()
}
