package library

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vmconfig"
)

// An OVA is shown as a folder holding its disks: the disk "x.vmdk" of
// "web02.ova" has the path "web02.ova/x.vmdk", and is read in place from
// the tar through OVAOpenFile.

// ovaCache keeps one index per OVA file, checked against its size and
// modification time.
var ovaCache sync.Map // abs path → ovaEntry

type ovaEntry struct {
	size  int64
	mtime int64
	ova   *vmconfig.OVA
	err   error
}

// OVAIndex reads the OVA at path (its tar index and OVF), or returns the
// cached one while the file is unchanged.
func OVAIndex(path string) (*vmconfig.OVA, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	k := key(path)
	if v, ok := ovaCache.Load(k); ok {
		e := v.(ovaEntry)
		if e.size == st.Size() && e.mtime == st.ModTime().UnixNano() {
			return e.ova, e.err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ova, err := vmconfig.ParseOVA(f, st.Size())
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	ovaCache.Store(k, ovaEntry{st.Size(), st.ModTime().UnixNano(), ova, err})
	return ova, err
}

// OVAError is why the OVA file at path cannot be shown as a folder of
// its disks (its tar or OVF is broken); nil for a sound OVA and for any
// other file. Such an OVA is shown as an image that cannot be opened.
func OVAError(path string) error {
	if !isOVA(path) {
		return nil
	}
	_, err := OVAIndex(path)
	return err
}

// IsOVA tells whether the file at path is an OVA package (a tar whose
// first member is an OVF descriptor), whatever its name.
func IsOVA(path string) bool { return isOVA(path) }

// PackageError is what a command given an OVA file where it wants one
// disk says: the package is a folder of disks, not a disk.
func PackageError(path string) error {
	if err := OVAError(path); err != nil {
		return err
	}
	ents, _ := ovaDisks(path)
	var names []string
	for _, e := range ents {
		names = append(names, e.Path)
	}
	return fmt.Errorf("%s is an OVA package, not a disk: its disks are %s", path, strings.Join(names, ", "))
}

// isOVA tells an OVA file by its first tar header.
func isOVA(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return vmconfig.IsOVA(head)
}

// ovaDisks lists the disks the OVF names that the tar holds, as entries
// whose paths are inside the OVA.
func ovaDisks(path string) ([]Entry, error) {
	ova, err := OVAIndex(path)
	if err != nil {
		return nil, err
	}
	var out []Entry
	seen := map[string]bool{}
	for _, d := range ova.VM.Disks {
		m, ok := ova.Member(d.Path)
		if !ok || seen[m.Name] || strings.Contains(m.Name, "/") || m.Name == "info.json" {
			continue
		}
		seen[m.Name] = true
		out = append(out, Entry{Name: m.Name, Path: filepath.Join(path, m.Name), Format: "vmdk"})
	}
	return out, nil
}

// InOVA splits a path inside an OVA into the OVA file and the member;
// ok is false for an ordinary path.
func InOVA(path string) (ova, member string, ok bool) {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil || !st.Mode().IsRegular() || !isOVA(dir) {
		return "", "", false
	}
	return dir, filepath.Base(path), true
}

// OVAReason is why a disk inside an OVA is read-only.
const OVAReason = "stored inside an OVA package (read in place from the tar, never written)"

// OVAOpenFile opens the host files of a disk inside an OVA: the member
// itself, read-only, as a window on the tar.
func OVAOpenFile(path string, writable bool) (vdisk.File, error) {
	if writable {
		return nil, fmt.Errorf("%s: %s: %w", path, OVAReason, vdisk.ErrReadOnly)
	}
	ovaPath, name, ok := InOVA(path)
	if !ok {
		return vdisk.OpenOSFile(path, false)
	}
	ova, err := OVAIndex(ovaPath)
	if err != nil {
		return nil, err
	}
	m, ok := ova.Member(name)
	if !ok {
		return nil, fmt.Errorf("%s: no member %s in the tar: %w", ovaPath, name, os.ErrNotExist)
	}
	f, err := os.Open(ovaPath)
	if err != nil {
		return nil, err
	}
	return &memberFile{f: f, name: path, off: m.Offset, size: m.Size}, nil
}

// memberFile is one tar member as a read-only vdisk.File.
type memberFile struct {
	f         *os.File
	name      string
	off, size int64
}

func (m *memberFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", m.name)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > m.size-off {
		p, short = p[:m.size-off], true
	}
	n, err := m.f.ReadAt(p, m.off+off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

var errMemberRO = errors.New("an OVA member is read-only")

func (m *memberFile) WriteAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("%s: %w: %w", m.name, errMemberRO, vdisk.ErrReadOnly)
}
func (m *memberFile) Truncate(int64) error {
	return fmt.Errorf("%s: %w: %w", m.name, errMemberRO, vdisk.ErrReadOnly)
}
func (m *memberFile) Size() (int64, error) { return m.size, nil }
func (m *memberFile) Name() string         { return m.name }
func (m *memberFile) Close() error         { return m.f.Close() }
