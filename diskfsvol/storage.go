package diskfsvol

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/offvm/offvm/volume"
)

// storage adapts a volume.Device to go-diskfs's backend.Storage, read-only:
// the engines behind this adapter are never given a way to write.
type storage struct {
	dev volume.Device
	pos int64
}

var errReadOnly = errors.New("diskfsvol: read-only storage")

func (s *storage) Stat() (fs.FileInfo, error) { return devInfo{s.dev.Size()}, nil }
func (s *storage) Close() error               { return nil }
func (s *storage) ReadAt(p []byte, off int64) (int, error) {
	return s.dev.ReadAt(p, off)
}
func (s *storage) Read(p []byte) (int, error) {
	n, err := s.dev.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}
func (s *storage) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.pos = off
	case io.SeekCurrent:
		s.pos += off
	case io.SeekEnd:
		s.pos = s.dev.Size() + off
	}
	return s.pos, nil
}
func (s *storage) Sys() (*os.File, error)                  { return nil, errReadOnly }
func (s *storage) Writable() (backend.WritableFile, error) { return nil, errReadOnly }
func (s *storage) Path() string                            { return "" }

type devInfo struct{ size int64 }

func (d devInfo) Name() string       { return "device" }
func (d devInfo) Size() int64        { return d.size }
func (d devInfo) Mode() fs.FileMode  { return 0o400 }
func (d devInfo) ModTime() time.Time { return time.Time{} }
func (d devInfo) IsDir() bool        { return false }
func (d devInfo) Sys() any           { return nil }
