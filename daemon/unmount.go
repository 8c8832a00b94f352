package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// unmountBound is how long go-fuse's Unmount may take before the FUSE
// connection is aborted. Unmount detaches the tree, then waits for its
// read loops to end, which they do only when the kernel ends the
// connection: a copy of the mount in another mount namespace (a process
// started under unshare -m, a systemd service with a private /tmp) keeps
// it alive, and Unmount would wait for ever with every change unsaved.
var unmountBound = 10 * time.Second

// connectionsDir is where the kernel lists FUSE connections.
const connectionsDir = "/sys/fs/fuse/connections"

// unmountTree unmounts srv at mountpoint. When Unmount does not return
// within unmountBound, the connection is aborted so that the read loops
// end, and the commit can go on: the tree is already gone from this
// mount namespace, and the changes are all in memory.
func unmountTree(srv *fuse.Server, mountpoint string) error {
	abort, cerr := connectionAbort(mountpoint) // before: after, st_dev is the host's
	done := make(chan error, 1)
	go func() { done <- srv.Unmount() }()
	select {
	case err := <-done:
		return err
	case <-time.After(unmountBound):
	}
	if cerr != nil {
		slog.Error("unmount does not return and the FUSE connection cannot be found to abort it", "mountpoint", mountpoint, "waited", unmountBound, "err", cerr)
		return <-done
	}
	slog.Warn("unmount does not return (another mount namespace may hold the tree); aborting the FUSE connection",
		"mountpoint", mountpoint, "waited", unmountBound, "abort", abort)
	if err := writeAbort(abort); err != nil {
		slog.Error("aborting the FUSE connection", "abort", abort, "err", err)
		return <-done
	}
	return <-done
}

// connectionAbort names the abort file of the FUSE connection serving
// mountpoint: the connection's number is the device number of its
// super block (major 0, so the minor number, for FUSE).
func connectionAbort(mountpoint string) (string, error) {
	var st unix.Stat_t
	statted := make(chan error, 1)
	go func() { statted <- unix.Stat(mountpoint, &st) }() // a stuck tree must not stick us
	select {
	case err := <-statted:
		if err != nil {
			return "", fmt.Errorf("stat %s: %w", mountpoint, err)
		}
	case <-time.After(unmountBound):
		return "", fmt.Errorf("stat %s: no answer in %v", mountpoint, unmountBound)
	}
	dev := uint64(st.Dev)
	n := uint64(unix.Major(dev))<<20 | uint64(unix.Minor(dev))
	return filepath.Join(connectionsDir, strconv.FormatUint(n, 10), "abort"), nil
}

// writeAbort aborts a FUSE connection. Hosts that do not mount fusectl
// get it mounted when we are root (the connection's owner may write its
// abort file, but only root may mount).
func writeAbort(abort string) error {
	if _, err := os.Stat(abort); errors.Is(err, os.ErrNotExist) && os.Geteuid() == 0 {
		if merr := unix.Mount("fusectl", connectionsDir, "fusectl", 0, ""); merr != nil && !errors.Is(merr, unix.EBUSY) {
			return fmt.Errorf("mounting fusectl on %s to reach %s: %w", connectionsDir, abort, merr)
		}
	}
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
		return fmt.Errorf("%s: %w", abort, err)
	}
	return nil
}
