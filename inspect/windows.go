package inspect

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/partition"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
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
	soft, softErr := load(reg, "HKLM/SOFTWARE")
	sys, sysErr := load(reg, "HKLM/SYSTEM")
	// The other hives' problems (these two are loaded: nothing more to
	// read for them) are looked for while the facts are read: on a cold
	// image both wait on storage, and their reads overlap.
	hiveProblems := make(chan []string, 1)
	go func() { hiveProblems <- reg.Problems() }()
	if softErr != nil {
		problem("SOFTWARE hive", softErr)
	} else {
		softwareFacts(o, soft)
		inf.Applications = applications(soft)
		ups, last := updates(soft)
		inf.Updates = ups
		o.LastUpdate = last
		inf.Patches = patches(soft)
		inf.Staged = staged(soft)
	}
	if sysErr != nil {
		problem("SYSTEM hive", sysErr)
	} else {
		drives := make(chan map[string]string, 1) // its lookup overlaps the others'
		go func() { drives <- driveLetters(sys, im.Table()) }()
		systemFacts(o, sys)
		inf.Drives = <-drives
	}
	inf.Problems = append(inf.Problems, <-hiveProblems...) // hives shown read-only, and why
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
	o.ProductName = strp(k.StringValue("ProductName"))
	o.Edition = strp(k.StringValue("EditionID"))
	if maj, ok := k.DwordValue("CurrentMajorVersionNumber"); ok {
		mn, _ := k.DwordValue("CurrentMinorVersionNumber")
		o.Version = strp(fmt.Sprintf("%d.%d", maj, mn))
	} else {
		o.Version = strp(k.StringValue("CurrentVersion"))
	}
	for _, name := range []string{"CurrentBuildNumber", "CurrentBuild"} {
		if b, err := strconv.Atoi(k.StringValue(name)); err == nil {
			o.Build = &b
			break
		}
	}
	if u, ok := k.DwordValue("UBR"); ok {
		v := int(u)
		o.UBR = &v
	}
	if d, ok := k.DwordValue("InstallDate"); ok && d != 0 {
		s := time.Unix(int64(d), 0).UTC().Format(time.RFC3339)
		o.InstallDate = &s
	}
}

// systemFacts reads the architecture and the network name from the
// control set Windows boots with. Select\Current names ControlSet001 on
// nearly every install, so that set's lookups start while Select is read
// (on a cold image each waits on storage) and are made again under the
// set Select names when it is another.
func systemFacts(o *OS, sys *hive.Hive) {
	const guess = "ControlSet001"
	early := make(chan controlFacts, 1)
	go func() { early <- controlSetFacts(sys, guess) }()
	cs := currentControlSet(sys)
	f := <-early
	if cs != guess {
		f = controlSetFacts(sys, cs)
	}
	o.Arch, o.Hostname, o.Domain = f.arch, f.hostname, f.domain
}

// controlFacts is what systemFacts reads from one control set.
type controlFacts struct{ arch, hostname, domain *string }

// controlSetFacts reads control set cs; the architecture is looked up
// while the network name is.
func controlSetFacts(sys *hive.Hive, cs string) controlFacts {
	arch := make(chan *string, 1)
	go func() {
		var a *string
		if k, err := sys.Lookup(cs + `\Control\Session Manager\Environment`); err == nil {
			a = strp(archName(k.StringValue("PROCESSOR_ARCHITECTURE")))
		}
		arch <- a
	}()
	var f controlFacts
	if k, err := sys.Lookup(cs + `\Services\Tcpip\Parameters`); err == nil {
		f.hostname = strp(strings.ToLower(firstOf(k.StringValue("Hostname"), k.StringValue("NV Hostname"))))
		f.domain = strp(firstOf(k.StringValue("Domain"), k.StringValue("NV Domain")))
	}
	if f.hostname == nil {
		if k, err := sys.Lookup(cs + `\Control\ComputerName\ComputerName`); err == nil {
			f.hostname = strp(strings.ToLower(k.StringValue("ComputerName")))
		}
	}
	f.arch = <-arch
	return f
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
		if n, ok := k.DwordValue("Current"); ok {
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
			name := s.StringValue("DisplayName")
			if name == "" {
				continue
			}
			a := Application{Name: name, Version: strp(s.StringValue("DisplayVersion")), Publisher: strp(s.StringValue("Publisher"))}
			id := name + "\x00" + s.StringValue("DisplayVersion")
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

// updates lists installed packages Package_for_KB... and Package_N_for_KB...
// (a cumulative update installs as Package_for_RollupFix with its KB only
// in the child packages update.mum names: Package_1_for_KB5034439, ...;
// CurrentState 0x70 means installed) with their install time, and
// returns the latest.
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
		kb, ok := packageKB(name)
		if !ok {
			continue
		}
		if st, ok := s.DwordValue("CurrentState"); !ok || st != 0x70 {
			continue
		}
		u := Update{ID: kb, Package: name}
		hi, ok1 := s.DwordValue("InstallTimeHigh")
		lo, ok2 := s.DwordValue("InstallTimeLow")
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
		out = append(out, Patch{ID: s.Name(), Applied: strp(s.StringValue("Applied"))})
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
		out = append(out, StagedUpdate{ID: s.Name(), State: s.StringValue("State"), Result: strp(s.StringValue("Result")),
			ExitCode: strp(s.StringValue("ExitCode")), StagedAt: strp(s.StringValue("StagedAt")), Finished: strp(s.StringValue("Finished"))})
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

// packageKB is the KB of a CBS package key Package_for_KB<n>~... or
// Package_<digits>_for_KB<n>~...
func packageKB(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "Package_")
	if !ok {
		return "", false
	}
	if i := strings.Index(rest, "_for_"); i > 0 && strings.Trim(rest[:i], "0123456789") == "" {
		rest = rest[i+1:]
	}
	kb, ok := strings.CutPrefix(rest, "for_KB")
	if !ok || kb == "" || kb[0] < '0' || kb[0] > '9' {
		return "", false
	}
	if i := strings.IndexByte(kb, '~'); i >= 0 {
		kb = kb[:i]
	}
	return "KB" + kb, true
}
