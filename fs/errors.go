package fs

import (
	"errors"
	"io"
	"log/slog"
	"runtime/debug"
	"syscall"

	"github.com/offvm/offvm/vdisk"
)

// errno turns an engine's error into what the kernel gets. Engines wrap a
// syscall.Errno; anything else is logged and becomes EIO, so the user sees
// "Input/output error" and the log says why.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, vdisk.ErrReadOnly):
		return syscall.EROFS
	case errors.Is(err, io.EOF):
		return 0
	}
	slog.Warn("I/O error", "err", err)
	return syscall.EIO
}

// guard recovers an engine panic inside one FUSE request: the request fails
// with EIO and the daemon, with every other image, stays up.
func guard(op string, out *syscall.Errno) {
	if r := recover(); r != nil {
		slog.Error("panic in FUSE request", "op", op, "panic", r, "stack", string(debug.Stack()))
		*out = syscall.EIO
	}
}
