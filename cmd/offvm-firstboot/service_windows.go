//go:build windows

package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/offvm/offvm/updates/firstboot"
)

const (
	serviceName = "offvm-firstboot"
	stagedKey   = `SOFTWARE\offvm\Staged`
)

func run() {
	isSvc, err := svc.IsWindowsService()
	if err != nil || !isSvc {
		fmt.Fprintln(os.Stderr, "offvm-firstboot: runs as the offvm-firstboot service (offvm registers it)")
		os.Exit(2)
	}
	if err := svc.Run(serviceName, handler{}); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

type handler struct{}

// Execute reports running at once, installs in the background, and
// stops when done (or when Windows asks).
func (handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	done := make(chan error, 1)
	go func() {
		_, err := firstboot.Run(newStore(), execRunner{}, time.Now)
		done <- err
	}()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			code := uint32(0)
			if err != nil {
				log.Print(err)
				code = 1
			}
			status <- svc.Status{State: svc.StopPending}
			return false, code
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				// DISM goes on in its own process; the attempt is
				// recorded and the next boot tries again
				status <- svc.Status{State: svc.StopPending}
				return false, 0
			}
		}
	}
}

type execRunner struct{}

func (execRunner) Run(name string, args ...string) (int, error) {
	cmd := exec.Command(filepath.Join(os.Getenv("SystemRoot"), "System32", name), args...)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// store is HKLM\SOFTWARE\offvm\Staged and the folder beside the exe.
type store struct{ dir string }

func newStore() store {
	exe, _ := os.Executable()
	return store{dir: filepath.Dir(exe)}
}

func (s store) Entries() ([]firstboot.Entry, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, stagedKey, registry.READ)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	names, err := k.ReadSubKeyNames(-1)
	if err != nil {
		return nil, err
	}
	var out []firstboot.Entry
	for _, n := range names {
		sk, err := registry.OpenKey(k, n, registry.READ)
		if err != nil {
			return nil, err
		}
		e := firstboot.Entry{KB: n}
		e.File, _, _ = sk.GetStringValue("File")
		e.State, _, _ = sk.GetStringValue("State")
		e.Restart, _, _ = sk.GetStringValue("Restart")
		a, _, _ := sk.GetStringValue("Attempts")
		e.Attempts, _ = strconv.Atoi(a)
		o, _, _ := sk.GetIntegerValue("Order")
		ssu, _, _ := sk.GetIntegerValue("ServicingStack")
		e.Order, e.ServicingStack = int(o), ssu != 0
		sk.Close()
		out = append(out, e)
	}
	return out, nil
}

func (s store) Record(kb string, vals map[string]string) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, stagedKey+`\`+kb, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	for n, v := range vals {
		if err := k.SetStringValue(n, v); err != nil {
			return err
		}
	}
	return nil
}

func (s store) StagedDir(kb string) string { return filepath.Join(s.dir, "staged", kb) }

func (s store) RemoveStaged() error { return os.RemoveAll(filepath.Join(s.dir, "staged")) }

// RemoveService deletes the service (Windows removes it once stopped)
// and the exe at the next restart (a running exe cannot be deleted).
func (s store) RemoveService() error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	sv, err := m.OpenService(serviceName)
	if err != nil {
		return err
	}
	defer sv.Close()
	if err := sv.Delete(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(exe)
	if err != nil {
		return err
	}
	return windows.MoveFileEx(p, nil, windows.MOVEFILE_DELAY_UNTIL_REBOOT)
}

func (s store) Reboot(reason string) error {
	_, err := execRunner{}.Run("shutdown.exe", "/r", "/t", "60", "/d", "p:2:17", "/c", reason)
	return err
}
