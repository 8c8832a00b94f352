package volume

import (
	"fmt"
	"io"
	"strings"
	"syscall"
)

// Resolve walks a slash- or backslash-separated path from the root with
// the file system's own lookup rules (case-insensitive on NTFS and FAT).
// Symbolic links are not followed.
func Resolve(f FS, path string) (Attr, error) {
	a, err := f.GetAttr(f.Root())
	if err != nil {
		return Attr{}, err
	}
	for _, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' }) {
		if a.Mode.IsRegular() {
			return Attr{}, fmt.Errorf("%s: %w", path, syscall.ENOTDIR)
		}
		if a, err = f.Lookup(a.Ino, part); err != nil {
			return Attr{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return a, nil
}

// ReadFile reads a whole file by path, refusing files larger than max
// bytes (inspection reads small files; a hostile image must not make us
// read gigabytes).
func ReadFile(f FS, path string, max int64) ([]byte, error) {
	a, err := Resolve(f, path)
	if err != nil {
		return nil, err
	}
	if !a.Mode.IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: %w", path, syscall.EISDIR)
	}
	if a.Size > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d this reader takes: %w", path, a.Size, max, syscall.EFBIG)
	}
	buf := make([]byte, a.Size)
	n, err := f.ReadAt(a.Ino, buf, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return buf[:n], nil
}
