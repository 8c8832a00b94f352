package txn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// syncDir makes renames, creations and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("txn: open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if !syncOff {
		if err := d.Sync(); err != nil {
			return fmt.Errorf("txn: sync directory %s: %w", dir, err)
		}
	}
	traceSyncDir(dir)
	return nil
}

// setMtime sets a file's mtime, to the nanosecond, leaving its atime.
func setMtime(path string, ns int64) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(ns)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, 0); err != nil {
		return fmt.Errorf("txn: restore the mtime of %s: %w", path, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// tempFile makes an anonymous read-write file in dir (os.TempDir() when
// dir is ""): with O_TMPFILE it never has a name; otherwise it is unlinked
// right after creation. Either way the space is freed when it is closed,
// whatever way the process ends.
func tempFile(dir string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return f, nil
	}
	f, err = os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("txn: temporary file in %s: %w", dir, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("txn: unlink temporary file %s: %w", f.Name(), err)
	}
	return f, nil
}

// removeDurably removes path (absent is fine) and syncs its directory.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("txn: remove %s: %w", path, err)
	}
	traceRemove(path)
	return syncDir(filepath.Dir(path))
}

// renameDurably renames old to new and syncs their directory.
func renameDurably(old, new string) error {
	if err := os.Rename(old, new); err != nil {
		return fmt.Errorf("txn: rename %s to %s: %w", old, new, err)
	}
	traceRename(old, new)
	return syncDir(filepath.Dir(new))
}

// syncOff turns fsync off. Only the fuzz test sets it: it runs Recover
// thousands of times a second, and durability is not what it tests.
var syncOff bool

func fsync(f *os.File) error {
	if syncOff {
		return nil
	}
	if err := f.Sync(); err != nil {
		return err
	}
	traceFsync(f)
	return nil
}
