// Package noopen serves a read-only FUSE mount with zero-message opens:
// the kernel opens files without asking the daemon, and closes them
// without FLUSH or RELEASE.
//
// Linux stops sending OPEN for the whole connection once a daemon answers
// one with ENOSYS (fc->no_open), and then opens every file with
// FOPEN_KEEP_CACHE; likewise FLUSH (fc->no_flush). For a scanner's second
// pass over files whose pages and attributes the kernel already holds,
// that is the difference between two round trips per file and none. It
// costs what an open could do: the daemon learns nothing of opens and
// closes, no file gets a handle, O_TRUNC on open would be lost (with
// atomic O_TRUNC the kernel believes OPEN truncated) and direct I/O is not
// available. So it is for read-only mounts only (the kernel refuses every
// write on a read-only super block before it would open), whose nodes
// check access where they read (Read, not Open). Directories keep
// OPENDIR: go-fuse lists a directory only through the handle it opens.
package noopen

import "github.com/hanwen/go-fuse/v2/fuse"

// FS answers OPEN and FLUSH with ENOSYS, so the kernel sends neither
// again; everything else goes to the wrapped file system.
type FS struct{ fuse.RawFileSystem }

// Wrap returns raw with zero-message opens.
func Wrap(raw fuse.RawFileSystem) fuse.RawFileSystem { return FS{raw} }

// Open is answered once: the kernel sets no_open and never asks again.
func (FS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

// Flush is answered once: no open file of a read-only mount has anything
// to write back, and the kernel sets no_flush.
func (FS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.ENOSYS }
