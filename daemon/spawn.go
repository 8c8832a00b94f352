package daemon

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// readyFDEnv tells a re-executed daemon which descriptor to report on.
const readyFDEnv = "OFFVM_READY_FD"

// Spawn re-executes this program with args (which must include
// --foreground) as a detached daemon, and returns once the daemon reports
// that the tree is visible, or why it could not mount. This is how
// `offvm mount` returns only when the mount is usable, as guestmount does.
func Spawn(args []string, mountpoint string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	if err := ensureRuntimeDir(RuntimeDir()); err != nil {
		return err
	}
	logf, err := os.OpenFile(LogPath(mountpoint), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return err
	}
	pw.Close()
	line, _ := bufio.NewReader(pr).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "ok" {
		cmd.Process.Release()
		return nil
	}
	cmd.Wait()
	if line == "" {
		return fmt.Errorf("%s: the daemon exited before mounting (log: %s)", mountpoint, LogPath(mountpoint))
	}
	return fmt.Errorf("%s", line)
}

// NotifyReady tells the parent of a spawned daemon how mounting went. It
// does nothing in a daemon started by hand with --foreground.
func NotifyReady(err error) {
	fd := os.Getenv(readyFDEnv)
	if fd != "3" {
		return
	}
	os.Unsetenv(readyFDEnv)
	f := os.NewFile(3, "ready")
	if f == nil {
		return
	}
	defer f.Close()
	if err != nil {
		fmt.Fprintln(f, strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	fmt.Fprintln(f, "ok")
	// The daemon's stdin is the terminal of the shell that started it.
	if devnull, err := os.Open(os.DevNull); err == nil {
		syscall.Dup2(int(devnull.Fd()), 0)
	}
}
