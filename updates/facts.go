package updates

import (
	"fmt"
	"strings"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/volume"
)

const (
	cbsRoot        = `Microsoft\Windows\CurrentVersion\Component Based Servicing`
	stagedRoot     = `offvm\Staged`
	sessionManager = `Control\Session Manager`
)

// ReadFacts reads, read-only, what Decide needs from an opened image.
func ReadFacts(im *mount.Image) (Facts, error) {
	inf := inspect.Describe(im)
	f := Facts{Staged: map[string]StagedRecord{}}
	o, _ := inf.OS.(*inspect.OS)
	if o == nil || o.Family != "windows" {
		return f, nil
	}
	f.Windows = true
	if o.Build != nil {
		f.Build = *o.Build
	}
	if o.Arch != nil {
		f.Arch = *o.Arch
	}
	if o.Edition != nil {
		f.Edition = *o.Edition
	}
	reg, vol, err := im.Registry()
	if err != nil {
		return f, err
	}
	soft, err := loadHive(reg.Hive("HKLM/SOFTWARE"), reg.FS, "SOFTWARE")
	if err != nil {
		return f, err
	}
	if k, err := soft.Lookup(`Microsoft\Windows NT\CurrentVersion`); err == nil {
		if u, ok := k.DwordValue("UBR"); ok {
			f.UBR = int(u)
		}
	}
	f.Packages = cbsPackages(soft)
	f.Staged = StagedRecords(soft)
	if _, err := soft.Lookup(cbsRoot + `\RebootPending`); err == nil {
		f.Pending = append(f.Pending, `Component Based Servicing\RebootPending is set`)
	}
	if sys, err := loadHive(reg.Hive("HKLM/SYSTEM"), reg.FS, "SYSTEM"); err == nil {
		f.ControlSet = ControlSet(sys)
		if k, err := sys.Lookup(f.ControlSet + `\` + sessionManager); err == nil {
			if v, err := k.Value("PendingFileRenameOperations"); err == nil {
				if d, _ := v.Data(); len(strings.Trim(string(d), "\x00")) > 0 {
					f.Pending = append(f.Pending, "Session Manager has PendingFileRenameOperations")
				}
			}
		}
	} else {
		return f, err
	}
	if vol != nil && vol.FS != nil {
		if _, err := volume.Resolve(vol.FS, "/Windows/WinSxS/pending.xml"); err == nil {
			f.Pending = append(f.Pending, `C:\Windows\WinSxS\pending.xml exists`)
		}
	}
	return f, nil
}

func loadHive(h *winreg.Hive, fs volume.FS, name string) (*hive.Hive, error) {
	if h == nil {
		return nil, fmt.Errorf("the %s hive is not on the system volume", name)
	}
	return h.Load(fs)
}

// ControlSet is "ControlSet00N" as Select\Current names it.
func ControlSet(sys *hive.Hive) string {
	if k, err := sys.Lookup("Select"); err == nil {
		if n, ok := k.DwordValue("Current"); ok && n > 0 && n < 1000 {
			return fmt.Sprintf("ControlSet%03d", n)
		}
	}
	return "ControlSet001"
}

func cbsPackages(soft *hive.Hive) []CBSPackage {
	k, err := soft.Lookup(cbsRoot + `\Packages`)
	if err != nil {
		return nil
	}
	subs, _ := k.Subkeys()
	out := make([]CBSPackage, 0, len(subs))
	for _, s := range subs {
		st, _ := s.DwordValue("CurrentState")
		out = append(out, CBSPackage{Key: s.Name(), State: st})
	}
	return out
}

// StagedRecords reads HKLM\SOFTWARE\offvm\Staged, by upper-case KB.
func StagedRecords(soft *hive.Hive) map[string]StagedRecord {
	out := map[string]StagedRecord{}
	k, err := soft.Lookup(stagedRoot)
	if err != nil {
		return out
	}
	subs, _ := k.Subkeys()
	for _, s := range subs {
		out[strings.ToUpper(s.Name())] = StagedRecord{KB: s.Name(), State: s.StringValue("State"), Result: s.StringValue("Result"),
			ExitCode: s.StringValue("ExitCode"), Attempts: s.StringValue("Attempts")}
	}
	return out
}
