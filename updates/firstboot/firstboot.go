// Package firstboot is the logic of offvm-firstboot, the Windows service
// offvm stages beside update packages: at boot it installs them with DISM
// (servicing stack first), records each result, restarts when a package
// asks for it, and removes itself when nothing is left. It is plain Go so
// it is tested on Linux with a fake runner and store; the service shell
// (cmd/offvm-firstboot) gives it the real ones on Windows.
package firstboot

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// MaxAttempts is how often one package is tried before it is failed.
const MaxAttempts = 3

// DISM exit codes that are not failures.
const (
	exitOK             = 0
	exitRebootRequired = 3010       // ERROR_SUCCESS_REBOOT_REQUIRED
	exitNotApplicable  = 0x800f081e // CBS_E_NOT_APPLICABLE
)

// Entry is one HKLM\SOFTWARE\offvm\Staged\<KB> record.
type Entry struct {
	KB             string
	File           string // the package's file name in staged\<KB>\
	State          string // "staged" until tried; then "done" or "failed" (Result says how)
	Order          int
	ServicingStack bool
	Restart        string // the manifest's restart: "required" restarts even on exit 0
	Attempts       int
}

// Runner runs a program and gives its exit code (err only when it could
// not be run at all).
type Runner interface {
	Run(name string, args ...string) (int, error)
}

// Store is where the records are and what removing ourselves means.
type Store interface {
	Entries() ([]Entry, error)
	// Record writes values of Staged\<KB>.
	Record(kb string, vals map[string]string) error
	// StagedDir is the folder of a KB's package (…\offvm\staged\<KB>).
	StagedDir(kb string) string
	RemoveStaged() error
	RemoveService() error
	Reboot(reason string) error
}

// Outcome says what one run did.
type Outcome struct {
	Installed, Failed, NotApplicable []string
	Rebooting                        bool
	Removed                          bool
}

// Run installs what is staged, in order: servicing stack first, then by
// the order offvm wrote. A package asking for a restart after a servicing
// stack stops the run there (the rest installs after the restart on the
// new stack); otherwise everything is installed, the service and the
// staged files are removed, and the machine restarts once if any package
// asked for it.
func Run(s Store, r Runner, now func() time.Time) (Outcome, error) {
	var out Outcome
	es, err := s.Entries()
	if err != nil {
		return out, fmt.Errorf("reading the staged records: %w", err)
	}
	todo := pending(es)
	reboot := false
	for i, e := range todo {
		res, restart, err := install(s, r, e, now)
		if err != nil {
			return out, err
		}
		switch res {
		case "installed":
			out.Installed = append(out.Installed, e.KB)
		case "not applicable":
			out.NotApplicable = append(out.NotApplicable, e.KB)
		default:
			out.Failed = append(out.Failed, e.KB)
		}
		reboot = reboot || restart
		if restart && e.ServicingStack && i < len(todo)-1 {
			out.Rebooting = true
			return out, s.Reboot("offvm: servicing stack " + e.KB + " installed; continuing after restart")
		}
	}
	if err := s.RemoveStaged(); err != nil {
		return out, fmt.Errorf("removing the staged packages: %w", err)
	}
	if err := s.RemoveService(); err != nil {
		return out, fmt.Errorf("removing the service: %w", err)
	}
	out.Removed = true
	if reboot {
		out.Rebooting = true
		return out, s.Reboot("offvm: updates installed; restart required")
	}
	return out, nil
}

// pending are the entries still to install, in install order.
func pending(es []Entry) []Entry {
	var out []Entry
	for _, e := range es {
		if e.State == "staged" {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ServicingStack != out[j].ServicingStack {
			return out[i].ServicingStack
		}
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].KB < out[j].KB
	})
	return out
}

// install tries one package up to MaxAttempts times (attempts already
// recorded, from a run that was cut off, count) and records the result.
func install(s Store, r Runner, e Entry, now func() time.Time) (string, bool, error) {
	path := s.StagedDir(e.KB) + `\` + e.File
	code, result := -1, "failed"
	var runErr error
	for e.Attempts < MaxAttempts {
		e.Attempts++
		// recorded before DISM runs: a crash or power cut mid-install
		// still counts the attempt
		if err := s.Record(e.KB, map[string]string{"Attempts": strconv.Itoa(e.Attempts), "State": "staged"}); err != nil {
			return "", false, err
		}
		code, runErr = r.Run("dism.exe", "/Online", "/Add-Package", "/PackagePath:"+path, "/NoRestart", "/Quiet")
		if runErr == nil && (code == exitOK || code == exitRebootRequired) {
			result = "installed"
			break
		}
		if runErr == nil && uint32(code) == exitNotApplicable {
			result = "not applicable"
			break
		}
	}
	restart := result == "installed" && (code == exitRebootRequired || e.Restart == "required")
	state := "done"
	if result == "failed" {
		state = "failed"
	}
	vals := map[string]string{"State": state, "Result": result, "ExitCode": exitText(code), "Attempts": strconv.Itoa(e.Attempts),
		"Finished": now().UTC().Format(time.RFC3339)}
	if runErr != nil {
		vals["Result"] = "failed: " + runErr.Error()
	}
	if restart {
		vals["Result"] = "installed, restart required"
	}
	if err := s.Record(e.KB, vals); err != nil {
		return "", false, err
	}
	return result, restart, nil
}

func exitText(code int) string {
	if code < 0 {
		return "none"
	}
	return fmt.Sprintf("0x%08x (%d)", uint32(code), code)
}
