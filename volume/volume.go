// Package volume is the interface between file system engines (NTFS, FAT,
// ext4, ISO 9660) and the FUSE tree. An engine serves one file system on a
// partition; the FUSE layer knows engines only through these interfaces.
//
// Errors are syscall.Errno values, wrapped with context where useful
// (fmt.Errorf("ntfs: record %d: %w", n, syscall.EIO)); the FUSE layer
// unwraps them with errors.As. Engines are safe for concurrent use.
package volume

import (
	"io"
	"os"
	"time"
)

// Ino identifies a file within one volume. It is stable for the life of the
// mount (NTFS: the MFT record number; engines without inode numbers assign
// their own). Hard links share an Ino.
type Ino uint64

// Attr is what stat shows of a file.
type Attr struct {
	Ino   Ino
	Mode  os.FileMode // type bits (ModeDir, ModeSymlink, 0 = regular) and permissions
	Size  int64
	Nlink uint32
	// Blocks is the allocated size in 512-byte units (sparse files, du).
	Blocks int64
	Atime  time.Time
	Mtime  time.Time
	Ctime  time.Time
}

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Ino  Ino
	Mode os.FileMode // type bits only
}

// StatFS is what statfs shows of the volume.
type StatFS struct {
	BlockSize  uint32
	Blocks     uint64
	BlocksFree uint64
	Files      uint64
	FilesFree  uint64
	NameMaxLen uint32
}

// FS is a mounted file system, read side.
type FS interface {
	// Type is the file system's name as info.json shows it: "ntfs",
	// "fat12", "fat16", "fat32", "ext4", "iso9660".
	Type() string
	Label() string
	Root() Ino
	// Lookup finds name in dir with the file system's own case rules
	// (NTFS and FAT: case-insensitive). ENOENT when absent.
	Lookup(dir Ino, name string) (Attr, error)
	GetAttr(ino Ino) (Attr, error)
	// ReadDir lists dir without "." and "..", in a stable order.
	ReadDir(dir Ino) ([]DirEntry, error)
	// ReadAt reads file content; io.EOF at end as io.ReaderAt does.
	ReadAt(ino Ino, p []byte, off int64) (int, error)
	Readlink(ino Ino) (string, error)
	// ListXattr and GetXattr expose alternate data streams as
	// "user.<stream>" and engine attributes such as "system.ntfs_attrib".
	// GetXattr returns ENODATA for an absent attribute.
	ListXattr(ino Ino) ([]string, error)
	GetXattr(ino Ino, name string) ([]byte, error)
	StatFS() (StatFS, error)
}

// What an engine can change is said by small interfaces, one per
// capability, as go-fuse's fs package does for nodes: an engine implements
// the ones its file system has, and the FUSE tree probes for the others
// and answers them with one errno (fs/capability.go) — FAT has no
// Linker, ext no Xattrer yet. Every change goes to the device the engine
// was opened on (for offvm: the transaction overlay), never elsewhere.

// Creator makes files and directories.
type Creator interface {
	Create(dir Ino, name string, mode os.FileMode) (Attr, error)
	Mkdir(dir Ino, name string, mode os.FileMode) (Attr, error)
}

// Remover removes files and empty directories.
type Remover interface {
	Unlink(dir Ino, name string) error
	Rmdir(dir Ino, name string) error
}

// Renamer moves oldName in oldDir to newName in newDir, replacing an
// existing file (not a non-empty directory) as rename(2) does.
type Renamer interface {
	Rename(oldDir Ino, oldName string, newDir Ino, newName string) error
}

// ContentWriter writes file content.
type ContentWriter interface {
	WriteAt(ino Ino, p []byte, off int64) (int, error)
}

// Truncater sets a file's size.
type Truncater interface {
	Truncate(ino Ino, size int64) error
}

// Syncer writes every pending metadata change to the device.
type Syncer interface {
	Sync() error
}

// Writer is the core every writable engine has, and all that the registry
// (hive files) and the patcher (bundle files) need: an engine that has it
// is opened read-write.
type Writer interface {
	Creator
	Remover
	Renamer
	ContentWriter
	Truncater
	Syncer
}

// Linker makes a hard link to ino in dir.
type Linker interface {
	Link(ino Ino, dir Ino, name string) (Attr, error)
}

// Symlinker makes a symbolic link.
type Symlinker interface {
	Symlink(dir Ino, name, target string) (Attr, error)
}

// Timer changes the times that are non-nil.
type Timer interface {
	SetTimes(ino Ino, atime, mtime *time.Time) error
}

// Xattrer sets and removes extended attributes (NTFS: named streams and
// system.ntfs_attrib).
type Xattrer interface {
	SetXattr(ino Ino, name string, value []byte) error
	RemoveXattr(ino Ino, name string) error
}

// Device is what an engine is opened on: a partition of a virtual disk.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
}

// Prefetcher reads ahead what stats of files ino will need (NTFS: their
// MFT records, in as few device reads as they lie together), so that the
// lookups a listing is followed by (readdirplus stats every entry) do not
// read them one at a time. A hint: errors are left to the lookups.
type Prefetcher interface {
	Prefetch(inos []Ino)
}

// AheadLooker is a Lookup for a caller whose lookups mostly follow a
// directory's order (the FUSE tree: rsync, cp -a and find stat its names
// one after the other): the engine may read the metadata of the names
// that follow with that of name (NTFS: their MFT records, in one read).
type AheadLooker interface {
	LookupAhead(dir Ino, name string) (Attr, error)
}
