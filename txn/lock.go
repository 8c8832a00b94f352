package txn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// qemu's image locking (block/file-posix.c): a process holding an image
// takes a shared OFD lock on byte 100+i for each permission bit i it holds
// and on byte 200+i for each one it does not let others have; before that
// it tests, for a conflict, the bytes of the others. The bits are those of
// include/block/block-common.h.
const (
	qemuPermBase   = 100
	qemuSharedBase = 200
)

const (
	permConsistentRead = iota
	permWrite
	permWriteUnchanged
	permResize
)

var permNames = [...]string{"consistent read", "write", "write unchanged", "resize"}

// We hold every permission, as a writer does, and share only consistent
// read, as a running qemu does: a reader that tolerates writers (qemu-img
// info on a raw file, qemu-io -r) may still look, nothing may write.
var (
	heldPerms     = []int{permConsistentRead, permWrite, permWriteUnchanged, permResize}
	unsharedPerms = []int{permWrite, permWriteUnchanged, permResize}
)

// ErrLocked means another process (qemu, or another offvm) holds the
// image in a way that forbids us writing it.
var ErrLocked = errors.New("image in use by another process")

// ImageLock is a held image lock; Close releases it.
type ImageLock struct {
	f *os.File
}

// Lock takes the image at path for writing, the way qemu does, so that a
// qemu (or another offvm) holding it makes Lock fail with ErrLocked and a
// message naming the holder, and so that, while we hold it, a qemu asking
// to write it fails ("Failed to get "write" lock"). The lock is an OFD
// lock: it belongs to this ImageLock's open file, not to the process.
func Lock(path string) (*ImageLock, error) {
	return lockPerms(path, heldPerms, unsharedPerms)
}

// A reader that wants the image to stay as it reads it (offvm mount --ro,
// like a qemu drive with readonly=on): it holds consistent read and lets
// nobody write or resize.
var (
	readerHeldPerms     = []int{permConsistentRead}
	readerUnsharedPerms = []int{permWrite, permResize}
)

// LockReader takes the image at path as a reader that forbids writers: a
// writer (qemu, offvm's patch, reg import, a read-write mount) then fails
// to lock it with a message naming this process, instead of changing the
// bytes under a view that serves them from its caches. It fails with
// ErrLocked when a writer holds the image already.
func LockReader(path string) (*ImageLock, error) {
	return lockPerms(path, readerHeldPerms, readerUnsharedPerms)
}

func lockPerms(path string, held, unshared []int) (*ImageLock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("txn: lock %s: %w", path, err)
	}
	for _, b := range lockBytes(held, unshared) {
		if err := ofdLock(f, b, unix.F_RDLCK, unix.F_OFD_SETLK); err != nil {
			f.Close()
			return nil, fmt.Errorf("txn: lock %s byte %d: %w", path, b, err)
		}
	}
	if err := checkConflicts(path, f, held, unshared); err != nil {
		f.Close()
		return nil, err
	}
	return &ImageLock{f: f}, nil
}

// Close releases the lock.
func (l *ImageLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func lockBytes(held, unshared []int) []int64 {
	var bs []int64
	for _, p := range held {
		bs = append(bs, qemuPermBase+int64(p))
	}
	for _, p := range unshared {
		bs = append(bs, qemuSharedBase+int64(p))
	}
	return bs
}

func ofdLock(f *os.File, b int64, typ int16, cmd int) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: b, Len: 1}
	return unix.FcntlFlock(f.Fd(), cmd, &lk)
}

// lockedByOther tests byte b the way qemu does: would a write lock
// conflict? Our own open file description never conflicts with itself.
func lockedByOther(f *os.File, b int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: b, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

// checkConflicts finds another holder that does not share a permission we
// hold, or holds one we do not share.
func checkConflicts(path string, f *os.File, held, unshared []int) error {
	type probe struct {
		b   int64
		why string
	}
	var probes []probe
	for _, p := range held {
		probes = append(probes, probe{qemuSharedBase + int64(p), "does not share the " + permNames[p] + " permission"})
	}
	for _, p := range unshared {
		probes = append(probes, probe{qemuPermBase + int64(p), "holds the " + permNames[p] + " permission"})
	}
	for _, pr := range probes {
		locked, err := lockedByOther(f, pr.b)
		if err != nil {
			return fmt.Errorf("txn: test lock byte %d of %s: %w", pr.b, path, err)
		}
		if locked {
			return fmt.Errorf("txn: %s is in use by %s, which %s (qemu lock byte %d): %w",
				path, lockHolders(path, f), pr.why, pr.b, ErrLocked)
		}
	}
	return nil
}

// lockHolders names the processes with OFD locks on path, for the user:
// OFD locks have no owner pid, so look for open files with locks in /proc.
// qemu moves its locks between descriptors when it changes permissions
// (it opens the new one, locks, closes the old), so a scan can fall between
// the two: look again a few times before giving up on a name.
func lockHolders(path string, ours *os.File) string {
	want, err := os.Stat(path)
	if err != nil {
		return "another process"
	}
	for try := 0; try < 5; try++ {
		if names := scanLockHolders(want, ours); len(names) > 0 {
			return strings.Join(names, ", ")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "another process"
}

// scanLockHolders lists "comm (pid N)" of every other open file with an
// OFD lock on the file want.
func scanLockHolders(want os.FileInfo, ours *os.File) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	var names []string
	seen := map[string]bool{}
	for _, info := range procs {
		pid, fd := filepath.Base(filepath.Dir(filepath.Dir(info))), filepath.Base(info)
		if pid == strconv.Itoa(os.Getpid()) && fd == strconv.Itoa(int(ours.Fd())) {
			continue
		}
		if !holdsLockOn(info, filepath.Join("/proc", pid, "fd", fd), want) {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		name := fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), pid)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

func holdsLockOn(fdinfo, fdlink string, want os.FileInfo) bool {
	b, err := os.ReadFile(fdinfo)
	if err != nil || !strings.Contains(string(b), "OFDLCK") {
		return false
	}
	fi, err := os.Stat(fdlink)
	return err == nil && os.SameFile(fi, want)
}

// Probe says whether Lock would succeed, without taking any lock: what
// `offvm ls` and `inspect` use to tell whether an image could be written,
// so that a qemu starting at that moment never trips over them. A
// conflict gives an error wrapping ErrLocked that names the holder.
func Probe(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("txn: probe lock of %s: %w", path, err)
	}
	defer f.Close()
	if free, err := rangeFree(f); err == nil && free {
		return nil // the common case, one call: nobody locks any byte we test
	}
	return checkConflicts(path, f, heldPerms, unsharedPerms)
}

// rangeFree reports whether no other open file locks any byte from the
// first to the last that checkConflicts tests (101..203): then none of
// them conflicts. ls asks this of every image of a library.
func rangeFree(f *os.File) (bool, error) {
	lo, hi := int64(qemuPermBase+permWrite), int64(qemuSharedBase+permResize)
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: lo, Len: hi - lo + 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type == unix.F_UNLCK, nil
}
