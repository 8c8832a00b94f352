package patcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/offvm/offvm/volume"
)

// chunk is the unit of comparison: a changed file is rewritten only in
// the chunks that differ.
const chunk = 1 << 20

// reader is what the patcher reads of a volume: a volume.FS of the
// image, or a directory of a mounted tree (hostfs).
type reader interface {
	Root() volume.Ino
	GetAttr(ino volume.Ino) (volume.Attr, error)
	Lookup(dir volume.Ino, name string) (volume.Attr, error)
	ReadDir(dir volume.Ino) ([]volume.DirEntry, error)
	ReadAt(ino volume.Ino, p []byte, off int64) (int, error)
}

// writer is what the patcher changes on a volume: the ordinary
// operations of volume.Writer, nothing else.
type writer interface {
	Create(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error)
	Mkdir(dir volume.Ino, name string, mode os.FileMode) (volume.Attr, error)
	Unlink(dir volume.Ino, name string) error
	Rmdir(dir volume.Ino, name string) error
	WriteAt(ino volume.Ino, p []byte, off int64) (int, error)
	Truncate(ino volume.Ino, size int64) error
}

// vol is one file system of the target as the patch reaches it.
type vol struct {
	name string // "C:" or "p3", for messages
	fs   reader
	w    writer // nil when the volume cannot be written
	ro   string // why w is nil
	// guard is called before an existing file is written or removed
	// (winreg's FileWrite on the registry's volume: a hive file and the
	// registry view must never disagree silently).
	guard func(volume.Ino) error
}

func (v *vol) writer() (writer, error) {
	if v.w == nil {
		return nil, fmt.Errorf("%s cannot be written: %s", v.name, v.ro)
	}
	return v.w, nil
}

func (v *vol) check(ino volume.Ino) error {
	if v.guard == nil {
		return nil
	}
	return v.guard(ino)
}

// lookup walks path from the root without following links: every
// component but the last must be a real directory. ENOENT when absent.
func lookup(f reader, path []string) (volume.Attr, error) {
	a, err := f.GetAttr(f.Root())
	if err != nil {
		return a, err
	}
	for i, name := range path {
		if !a.Mode.IsDir() {
			return a, fmt.Errorf("%s is not a directory in the image (links are not followed): %w", join(path[:i]), syscall.ENOTDIR)
		}
		if a, err = f.Lookup(a.Ino, name); err != nil {
			return a, err
		}
	}
	return a, nil
}

func join(p []string) string {
	s := ""
	for _, c := range p {
		s += "/" + c
	}
	if s == "" {
		return "/"
	}
	return s
}

func isNotExist(err error) bool { return errors.Is(err, syscall.ENOENT) }

// sameContent compares an image file with a bundle file of equal size.
func sameContent(f reader, ino volume.Ino, src string) (bool, error) {
	in, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer in.Close()
	want, got := make([]byte, chunk), make([]byte, chunk)
	for off := int64(0); ; off += chunk {
		n, err := io.ReadFull(in, want)
		if err == io.EOF {
			return true, nil
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return false, err
		}
		m, err := f.ReadAt(ino, got[:n], off)
		if err != nil && err != io.EOF {
			return false, err
		}
		if m != n || !bytes.Equal(want[:n], got[:n]) {
			return false, nil
		}
		if n < chunk {
			return true, nil
		}
	}
}

// syncContent makes image file ino hold src's bytes, writing only the
// chunks that differ and truncating what is left over.
func syncContent(v *vol, ino volume.Ino, size int64, src string) error {
	w, err := v.writer()
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	want, got := make([]byte, chunk), make([]byte, chunk)
	var off int64
	for {
		n, err := io.ReadFull(in, want)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return err
		}
		if n == 0 {
			break
		}
		m := 0
		if off < size {
			if m, err = v.fs.ReadAt(ino, got[:n], off); err != nil && err != io.EOF {
				return err
			}
		}
		if m != n || !bytes.Equal(want[:n], got[:n]) {
			if _, err := w.WriteAt(ino, want[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	if size > off {
		return w.Truncate(ino, off)
	}
	return nil
}

// parentOf resolves the directory holding path's last component.
func parentOf(v *vol, path []string) (volume.Ino, error) {
	a, err := lookup(v.fs, path[:len(path)-1])
	if err != nil {
		return 0, err
	}
	if !a.Mode.IsDir() {
		return 0, fmt.Errorf("%s is not a directory in the image: %w", join(path[:len(path)-1]), syscall.ENOTDIR)
	}
	return a.Ino, nil
}

// writeFile creates or updates the file at path with src's content.
func writeFile(v *vol, path []string, src string) error {
	w, err := v.writer()
	if err != nil {
		return err
	}
	dir, err := parentOf(v, path)
	if err != nil {
		return err
	}
	name := path[len(path)-1]
	a, err := v.fs.Lookup(dir, name)
	switch {
	case isNotExist(err):
		if a, err = w.Create(dir, name, 0o644); err != nil {
			return err
		}
	case err != nil:
		return err
	case !a.Mode.IsRegular():
		return fmt.Errorf("%s is not a regular file in the image", join(path))
	default:
		if err := v.check(a.Ino); err != nil {
			return err
		}
	}
	return syncContent(v, a.Ino, a.Size, src)
}

// makeDir creates the directory at path unless it is there.
func makeDir(v *vol, path []string) error {
	w, err := v.writer()
	if err != nil {
		return err
	}
	dir, err := parentOf(v, path)
	if err != nil {
		return err
	}
	a, err := v.fs.Lookup(dir, path[len(path)-1])
	if err == nil {
		if a.Mode.IsDir() {
			return nil
		}
		return fmt.Errorf("%s exists in the image and is not a directory", join(path))
	}
	if !isNotExist(err) {
		return err
	}
	_, err = w.Mkdir(dir, path[len(path)-1], 0o755)
	return err
}

// removeTree deletes the file, link or directory (with everything below
// it) at path. Links are removed, never followed.
func removeTree(v *vol, path []string) error {
	if _, err := v.writer(); err != nil {
		return err
	}
	dir, err := parentOf(v, path)
	if err != nil {
		return err
	}
	return removeIn(v, dir, path[len(path)-1], 0)
}

func removeIn(v *vol, dir volume.Ino, name string, depth int) error {
	if depth > 256 {
		return fmt.Errorf("%s: directories nested deeper than 256 levels: %w", name, syscall.ELOOP)
	}
	a, err := v.fs.Lookup(dir, name)
	if err != nil {
		return err
	}
	if !a.Mode.IsDir() {
		if err := v.check(a.Ino); err != nil {
			return err
		}
		return v.w.Unlink(dir, name)
	}
	ents, err := v.fs.ReadDir(a.Ino)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := removeIn(v, a.Ino, e.Name, depth+1); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return v.w.Rmdir(dir, name)
}

// readSmall reads a whole small file by path.
func readSmall(f reader, path []string, max int64) ([]byte, error) {
	a, err := lookup(f, path)
	if err != nil {
		return nil, err
	}
	if !a.Mode.IsRegular() || a.Size > max {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", join(path), max)
	}
	buf := make([]byte, a.Size)
	n, err := f.ReadAt(a.Ino, buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return buf[:n], nil
}
