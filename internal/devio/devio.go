// Package devio is the device write every engine makes: all of p at off,
// inside the device, or an error that names the bytes and the cause and
// unwraps to EIO (what a FUSE request answers when the image beneath
// fails). Engines add what they were writing ("fat: writing FAT 1 sector
// 3: ...").
package devio

import (
	"fmt"
	"io"
	"syscall"
)

// Device is what engines write: an io.WriterAt of a known size.
type Device interface {
	io.WriterAt
	Size() int64
}

// Error is a device write that did not happen in full.
type Error struct {
	Off   int64
	Len   int
	Cause error
}

func (e *Error) Error() string {
	return fmt.Sprintf("device write of %d bytes at %d: %v", e.Len, e.Off, e.Cause)
}

// Unwrap gives EIO to errors.Is and the cause to errors.As.
func (e *Error) Unwrap() []error { return []error{syscall.EIO, e.Cause} }

// errOutside is the cause of a write past the device: the engine computed
// an offset from a corrupt structure, and nothing is written.
var errOutside = fmt.Errorf("outside the device")

// Write writes all of p at off of dev.
func Write(dev Device, p []byte, off int64) error {
	if off < 0 || off > dev.Size()-int64(len(p)) {
		return &Error{Off: off, Len: len(p), Cause: fmt.Errorf("%w of %d bytes", errOutside, dev.Size())}
	}
	n, err := dev.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return &Error{Off: off, Len: len(p), Cause: err}
	}
	return nil
}
