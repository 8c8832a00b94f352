package daemon

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// The control socket lets `offvm unmount` ask the daemon to detach, commit
// and report, and wait until it has: unmount returns only when every
// image's changes are in its file.

// request is what the client sends, one JSON line.
type request struct {
	Cmd     string `json:"cmd"` // "unmount"
	Discard bool   `json:"discard"`
}

// reply is what the daemon streams back, one JSON line each: progress
// lines, then one with Done set.
type reply struct {
	Line string `json:"line,omitempty"`
	// Progress is a transient status ("web01.vhdx: 40%"), shown on a
	// terminal only.
	Progress string `json:"progress,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Error    string `json:"error,omitempty"`
}

// RuntimeDir is where control sockets, pid files and logs live.
func RuntimeDir() string {
	if os.Geteuid() == 0 {
		return "/run/offvm"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "offvm")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("offvm-%d", os.Getuid()))
}

// key names a mount's runtime files after its absolute mountpoint.
func key(mountpoint string) string {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		abs = mountpoint
	}
	abs = filepath.Clean(abs)
	h := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(h[:8])
}

// SocketPath is the control socket of the daemon serving mountpoint.
func SocketPath(mountpoint string) string {
	return filepath.Join(RuntimeDir(), key(mountpoint)+".sock")
}

// LogPath is where a background daemon writes its log.
func LogPath(mountpoint string) string {
	return filepath.Join(RuntimeDir(), key(mountpoint)+".log")
}

// Unmount asks the daemon serving mountpoint to unmount, streaming its
// progress lines to out. It returns the daemon's verdict.
func Unmount(mountpoint string, discard bool, out func(string), progress func(string)) error {
	if err := checkRuntimeDir(RuntimeDir()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", mountpoint, err) // its socket could be anyone's
	}
	c, err := net.Dial("unix", SocketPath(mountpoint))
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			os.Remove(SocketPath(mountpoint)) // its daemon died (kill -9): nobody listens
		}
		return fmt.Errorf("%s: no offvm daemon serves it (%w)", mountpoint, err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(request{Cmd: "unmount", Discard: discard}); err != nil {
		return fmt.Errorf("%s: talking to the daemon: %w", mountpoint, err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var r reply
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: bad reply from the daemon: %w", mountpoint, err)
		}
		if r.Progress != "" && progress != nil {
			progress(r.Progress)
		}
		if r.Line != "" {
			out(r.Line)
		}
		if r.Done {
			if r.Error != "" {
				return fmt.Errorf("%s", r.Error)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: the daemon ended without saying whether it committed (see %s)", mountpoint, LogPath(mountpoint))
}

// ensureRuntimeDir creates dir (mode 700) or checks the one there, as
// ssh-agent does: a directory someone else owns, or that others may
// write or enter, could hand our control socket or log to them (the
// fallback /tmp/offvm-UID is in a world-writable place anyone can create
// first). Such a directory is refused, not repaired.
func ensureRuntimeDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("runtime directory %s: %w", dir, err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("runtime directory %s: %w", dir, err)
		}
	}
	return checkRuntimeDir(dir)
}

func checkRuntimeDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("runtime directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("runtime directory %s is not a directory (a symlink or a file): refusing to use it", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("runtime directory %s: no owner information", dir)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("runtime directory %s belongs to uid %d, not to you (uid %d): refusing to use it; remove it or set XDG_RUNTIME_DIR", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("runtime directory %s has mode %o, open to other users: refusing to use it; chmod 700 it", dir, fi.Mode().Perm())
	}
	return nil
}
