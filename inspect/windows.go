package inspect

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/offvm/offvm/hive"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/partition"
	"github.com/offvm/offvm/winreg"
)

const (
	currentVersion = `Microsoft\Windows NT\CurrentVersion`
	uninstall      = `Microsoft\Windows\CurrentVersion\Uninstall`
	uninstall32    = `WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall`
	cbsPackages    = `Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages`
	offvmPatches   = `offvm\Patches`
	offvmStaged    = `offvm\Staged`
)

// describeWindows fills inf from the guest's registry; it reports whether
// the image holds a Windows installation.
func describeWindows(inf *mount.Info, im *mount.Image) bool {
	reg, vol, err := im.Registry()
	if err != nil || reg == nil {
		return false
	}
	o := &OS{Family: "windows", SystemPartition: partName(vol)}
	inf.OS = o
	problem := func(what string, err error) {
		inf.Problems = append(inf.Problems, fmt.Sprintf("%s: %v", what, err))
	}
	if soft, err := load(reg, "HKLM/SOFTWARE"); err != nil {
		problem("SOFTWARE hive", err)
	} else {
		softwareFacts(o, soft)
		inf.Applications = applications(soft)
		ups, last := updates(soft)
		inf.Updates = ups
		o.LastUpdate = last
		inf.Patches = patches(soft)
		inf.Staged = staged(soft)
	}
	if sys, err := load(reg, "HKLM/SYSTEM"); err != nil {
		problem("SYSTEM hive", err)
	} else {
		systemFacts(o, sys)
		inf.Drives = driveLetters(sys, im.Table())
	}
	inf.Problems = append(inf.Problems, reg.Problems()...) // hives shown read-only, and why
	var users []any
	for _, p := range reg.Profiles() {
		users = append(users, User{SID: p.SID, Name: strp(p.Name), Profile: strp(p.Path)})
	}
	if users != nil {
		inf.Users = users
	}
	return true
}

func load(reg *winreg.Registry, root string) (*hive.Hive, error) {
	h := reg.Hive(root)
	if h == nil {
		return nil, fmt.Errorf("%s is not on the system volume", root)
	}
	return h.Load(reg.FS)
}

// softwareFacts reads the product, edition, version and build.
func softwareFacts(o *OS, soft *hive.Hive) {
	k, err := soft.Lookup(currentVersion)
	if err != nil {
		return
	}
	o.ProductName = strp(str(k, "ProductName"))
	o.Edition = strp(str(k, "EditionID"))
	if maj, ok := dword(k, "CurrentMajorVersionNumber"); ok {
		mn, _ := dword(k, "CurrentMinorVersionNumber")
		o.Version = strp(fmt.Sprintf("%d.%d", maj, mn))
	} else {
		o.Version = strp(str(k, "CurrentVersion"))
	}
	for _, name := range []string{"CurrentBuildNumber", "CurrentBuild"} {
		if b, err := strconv.Atoi(str(k, name)); err == nil {
			o.Build = &b
			break
		}
	}
	if u, ok := dword(k, "UBR"); ok {
		v := int(u)
		o.UBR = &v
	}
	if d, ok := dword(k, "InstallDate"); ok && d != 0 {
		s := time.Unix(int64(d), 0).UTC().Format(time.RFC3339)
		o.InstallDate = &s
	}
}

// systemFacts reads the architecture and the network name from the
// control set Windows boots with.
func systemFacts(o *OS, sys *hive.Hive) {
	cs := currentControlSet(sys)
	if k, err := sys.Lookup(cs + `\Control\Session Manager\Environment`); err == nil {
		o.Arch = strp(archName(str(k, "PROCESSOR_ARCHITECTURE")))
	}
	if k, err := sys.Lookup(cs + `\Services\Tcpip\Parameters`); err == nil {
		o.Hostname = strp(strings.ToLower(firstOf(str(k, "Hostname"), str(k, "NV Hostname"))))
		o.Domain = strp(firstOf(str(k, "Domain"), str(k, "NV Domain")))
	}
	if o.Hostname == nil {
		if k, err := sys.Lookup(cs + `\Control\ComputerName\ComputerName`); err == nil {
			o.Hostname = strp(strings.ToLower(str(k, "ComputerName")))
		}
	}
}

func archName(s string) string {
	switch strings.ToUpper(s) {
	case "AMD64":
		return "amd64"
	case "X86":
		return "x86"
	case "ARM64":
		return "arm64"
	}
	return strings.ToLower(s)
}

// currentControlSet is "ControlSet00N" from Select\Current.
func currentControlSet(sys *hive.Hive) string {
	if k, err := sys.Lookup("Select"); err == nil {
		if n, ok := dword(k, "Current"); ok {
			return fmt.Sprintf("ControlSet%03d", n)
		}
	}
	return "ControlSet001"
}

func applications(soft *hive.Hive) []any {
	var out []any
	seen := map[string]bool{}
	for _, root := range []string{uninstall, uninstall32} {
		k, err := soft.Lookup(root)
		if err != nil {
			continue
		}
		subs, _ := k.Subkeys()
		for _, s := range subs {
			name := str(s, "DisplayName")
			if name == "" {
				continue
			}
			a := Application{Name: name, Version: strp(str(s, "DisplayVersion")), Publisher: strp(str(s, "Publisher"))}
			id := name + "\x00" + str(s, "DisplayVersion")
			if !seen[id] {
				seen[id] = true
				out = append(out, a)
			}
		}
	}
	if out == nil {
		return []any{}
	}
	return out
}

// updates lists installed packages Package_for_KB... (CurrentState 0x70
// means installed) with their install time, and returns the latest.
func updates(soft *hive.Hive) ([]any, *string) {
	k, err := soft.Lookup(cbsPackages)
	if err != nil {
		return []any{}, nil
	}
	subs, _ := k.Subkeys()
	byKB := map[string]Update{}
	var latest time.Time
	for _, s := range subs {
		name := s.Name()
		if !strings.HasPrefix(name, "Package_for_KB") {
			continue
		}
		if st, ok := dword(s, "CurrentState"); !ok || st != 0x70 {
			continue
		}
		kb := name[len("Package_for_"):]
		if i := strings.IndexByte(kb, '~'); i >= 0 {
			kb = kb[:i]
		}
		u := Update{ID: kb, Package: name}
		hi, ok1 := dword(s, "InstallTimeHigh")
		lo, ok2 := dword(s, "InstallTimeLow")
		if ok1 && ok2 {
			t := filetime(uint64(hi)<<32 | uint64(lo))
			str := t.Format(time.RFC3339)
			u.Installed = &str
			if t.After(latest) {
				latest = t
			}
		}
		if _, dup := byKB[kb]; !dup {
			byKB[kb] = u
		}
	}
	ids := make([]string, 0, len(byKB))
	for id := range byKB {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, byKB[id])
	}
	if latest.IsZero() {
		return out, nil
	}
	s := latest.Format(time.RFC3339)
	return out, &s
}

// patches lists the bundles offvm applied (HKLM\SOFTWARE\offvm\Patches).
func patches(soft *hive.Hive) []any {
	k, err := soft.Lookup(offvmPatches)
	if err != nil {
		return []any{}
	}
	subs, _ := k.Subkeys()
	out := make([]any, 0, len(subs))
	for _, s := range subs {
		out = append(out, Patch{ID: s.Name(), Applied: strp(str(s, "Applied"))})
	}
	return out
}

// staged lists the update packages offvm staged and what the first boot
// recorded (HKLM\SOFTWARE\offvm\Staged; updates/ writes it).
func staged(soft *hive.Hive) []any {
	k, err := soft.Lookup(offvmStaged)
	if err != nil {
		return []any{}
	}
	subs, _ := k.Subkeys()
	out := make([]any, 0, len(subs))
	for _, s := range subs {
		out = append(out, StagedUpdate{ID: s.Name(), State: str(s, "State"), Result: strp(str(s, "Result")),
			ExitCode: strp(str(s, "ExitCode")), StagedAt: strp(str(s, "StagedAt")), Finished: strp(str(s, "Finished"))})
	}
	return out
}

// driveLetters maps \DosDevices\X: entries of MountedDevices to partitions:
// MBR entries hold the disk signature and the partition's byte offset, GPT
// entries "DMIO:ID:" and the partition's GUID.
func driveLetters(sys *hive.Hive, t *partition.Table) map[string]string {
	out := map[string]string{}
	k, err := sys.Lookup("MountedDevices")
	if err != nil || t == nil {
		return out
	}
	vals, _ := k.Values()
	for _, v := range vals {
		name := v.Name()
		if !strings.HasPrefix(name, `\DosDevices\`) || len(name) != len(`\DosDevices\C:`) {
			continue
		}
		letter := name[len(`\DosDevices\`) : len(`\DosDevices\`)+1]
		d, err := v.Data()
		if err != nil {
			continue
		}
		if n := matchPartition(d, t); n > 0 {
			out[strings.ToUpper(letter)] = "p" + strconv.Itoa(n)
		}
	}
	return out
}

func matchPartition(d []byte, t *partition.Table) int {
	switch {
	case len(d) == 12 && t.Kind == "mbr":
		sig := fmt.Sprintf("%08x", binary.LittleEndian.Uint32(d))
		off := int64(binary.LittleEndian.Uint64(d[4:]))
		for _, p := range t.Partitions {
			if sig == t.DiskID && p.Start == off {
				return p.Number
			}
		}
	case len(d) == 24 && string(d[:8]) == "DMIO:ID:" && t.Kind == "gpt":
		g := guidString(d[8:])
		for _, p := range t.Partitions {
			if strings.EqualFold(p.GUID, g) {
				return p.Number
			}
		}
	}
	return 0
}

func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// str reads a string value, "" when absent or not a string.
func str(k *hive.Key, name string) string {
	v, err := k.Value(name)
	if err != nil {
		return ""
	}
	d, err := v.Data()
	if err != nil || (v.Type() != hive.RegSz && v.Type() != hive.RegExpandSz) {
		return ""
	}
	u := make([]uint16, 0, len(d)/2)
	for i := 0; i+1 < len(d); i += 2 {
		c := binary.LittleEndian.Uint16(d[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func dword(k *hive.Key, name string) (uint32, bool) {
	v, err := k.Value(name)
	if err != nil || v.Type() != hive.RegDword {
		return 0, false
	}
	d, err := v.Data()
	if err != nil || len(d) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(d), true
}

// filetime converts 100-ns intervals since 1601 to UTC time.
func filetime(ft uint64) time.Time {
	const epochDiff = 116444736000000000
	if ft < epochDiff {
		return time.Time{}
	}
	return time.Unix(0, int64(ft-epochDiff)*100).UTC()
}

// Drives returns the image's drive letters ("C" → "p3") as its registry
// maps them; empty for images without a Windows registry.
func Drives(im *mount.Image) map[string]string {
	reg, _, err := im.Registry()
	if err != nil || reg == nil {
		return nil
	}
	sys, err := load(reg, "HKLM/SYSTEM")
	if err != nil {
		return nil
	}
	return driveLetters(sys, im.Table())
}
