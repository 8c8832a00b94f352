// Package vdisk defines what every container format presents to the layers
// above it: the guest's virtual disk as ReadAt/WriteAt/Size, whatever the
// container (raw, VHD, VHDX, VMDK, qcow2).
//
// Formats never touch host files directly: they read and write through the
// File interface, so that the transaction layer can stage every host write,
// journal it, and only then apply it. Formats live in sub-packages; package
// vdisk/detect opens a file by its content and picks the format.
package vdisk

import (
	"errors"
	"io"
)

// File is a host file holding (part of) a container. *os.File satisfies it
// through OSFile; the transaction layer supplies staging implementations.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Size is the current length of the host file.
	Size() (int64, error)
	// Truncate sets the length of the host file.
	Truncate(size int64) error
	// Name is the host path, used in error messages and to resolve
	// relative parent and extent paths.
	Name() string
	Close() error
}

// Adviser is a File that can be told which bytes will be read soon, so
// that the kernel reads them in one request (host files; see osFile).
type Adviser interface {
	Advise(off, n int64)
}

// Disk is an open virtual disk. ReadAt must be safe for concurrent use;
// WriteAt may serialise internally. Reads of unallocated areas give zeros
// (or the parent's data). Reads and writes past Size are errors.
type Disk interface {
	io.ReaderAt
	io.WriterAt
	// Size is the virtual disk size in bytes.
	Size() int64
	Info() Info
	// Flush writes every pending metadata update (tables, headers,
	// footers) to the host file(s). Close flushes too.
	Flush() error
	Close() error
}

// Info describes an open disk.
type Info struct {
	Format  string // "raw", "vhd", "vhdx", "vmdk", "qcow2"
	Variant string // "fixed", "dynamic", "differencing", "monolithicSparse", "v3", ...
	// Parent is the host path of the parent/backing image, "" if none.
	Parent string
	// ReadOnly says why this disk refuses writes, "" when it accepts them.
	ReadOnly string
	// Problems is damage found and worked around while opening (a VHD
	// footer read through its copy), for inspect's problems.
	Problems []string
}

// Options tells a format how to reach the files around the one it opens.
type Options struct {
	// Writable asks for a disk that accepts WriteAt. Without it, WriteAt
	// fails with ErrReadOnly and no host file is ever written.
	Writable bool
	// OpenFile opens another host file of the same image (VMDK extents,
	// descriptor). Nil means OpenOSFile.
	OpenFile func(path string, writable bool) (File, error)
	// OpenParent opens a parent/backing image of any format, read-only.
	// Nil means the image has no way to reach parents: opening a child
	// then fails with ErrParentNotFound.
	OpenParent func(path string) (Disk, error)
}

// Open opens path with OpenFile, or the OS when OpenFile is nil.
func (o Options) Open(path string, writable bool) (File, error) {
	if o.OpenFile != nil {
		return o.OpenFile(path, writable)
	}
	return OpenOSFile(path, writable)
}

var (
	// ErrReadOnly is returned by WriteAt on a disk opened read-only or a
	// format that cannot be written.
	ErrReadOnly = errors.New("read-only disk")
	// ErrParentNotFound is returned when a differencing image's parent
	// cannot be located.
	ErrParentNotFound = errors.New("parent image not found")
	// ErrCorrupt wraps every structural error found in a container.
	ErrCorrupt = errors.New("corrupt image")
	// ErrUnsupported is returned for valid but unsupported features.
	ErrUnsupported = errors.New("unsupported image feature")
	// ErrOutOfRange is returned for reads or writes beyond the disk.
	ErrOutOfRange = errors.New("access beyond end of virtual disk")
)
