// Package nolockfs is a test file system: a FUSE passthrough of a folder
// whose byte-range locks all fail with ENOLCK ("no locks available"), as
// on an NFSv3 mount without its lock manager. The tests of the image locks
// use it to see what offvm does where it cannot lock an image.
package nolockfs

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose lock calls fail.
type node struct{ fs.LoopbackNode }

var (
	_ fs.NodeGetlker  = (*node)(nil)
	_ fs.NodeSetlker  = (*node)(nil)
	_ fs.NodeSetlkwer = (*node)(nil)
)

func (*node) Getlk(context.Context, fs.FileHandle, uint64, *fuse.FileLock, uint32, *fuse.FileLock) syscall.Errno {
	return syscall.ENOLCK
}

func (*node) Setlk(context.Context, fs.FileHandle, uint64, *fuse.FileLock, uint32) syscall.Errno {
	return syscall.ENOLCK
}

func (*node) Setlkw(context.Context, fs.FileHandle, uint64, *fuse.FileLock, uint32) syscall.Errno {
	return syscall.ENOLCK
}

func newNode(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
	return &node{fs.LoopbackNode{RootData: r}}
}

// Mount shows dir at mountpoint with no locks; the returned function
// unmounts it. EnableLocks makes the kernel hand every lock to us rather
// than keep them itself.
func Mount(dir, mountpoint string) (func() error, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("nolockfs %s: %w", dir, err)
	}
	root := &fs.LoopbackRoot{Path: dir, Dev: uint64(st.Dev), NewNode: newNode}
	root.RootNode = newNode(root, nil, "", &st)
	zero := time.Duration(0)
	srv, err := fs.Mount(mountpoint, root.RootNode, &fs.Options{
		EntryTimeout: &zero, AttrTimeout: &zero,
		MountOptions: fuse.MountOptions{EnableLocks: true, FsName: "nolockfs", Name: "nolockfs"},
	})
	if err != nil {
		return nil, fmt.Errorf("nolockfs %s on %s: %w", dir, mountpoint, err)
	}
	return srv.Unmount, nil
}
