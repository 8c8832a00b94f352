package inspect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// maxSmallFile bounds the text files inspection reads (os-release,
// hostname); dpkg's status file gets maxStatusFile.
const (
	maxSmallFile  = 64 << 10
	maxStatusFile = 64 << 20
)

// describeLinux fills inf when v holds a Linux root file system (one with
// an os-release); it reports whether it did.
func describeLinux(inf *mount.Info, v *mount.Volume) bool {
	f := v.FS
	if s, ok := f.(interface{ SystemTree() volume.FS }); ok {
		f = s.SystemTree() // btrfs: the subvolume mounted as / (Fedora's "root")
	}
	rel, err := volume.ReadFile(f, "etc/os-release", maxSmallFile)
	if err != nil {
		if rel, err = volume.ReadFile(f, "usr/lib/os-release", maxSmallFile); err != nil {
			return false
		}
	}
	kv := parseOSRelease(rel)
	o := &OS{Family: "linux", SystemPartition: partName(v),
		ProductName: strp(firstOf(kv["PRETTY_NAME"], kv["NAME"])), Distribution: strp(kv["ID"]),
		Version: strp(firstOf(kv["VERSION_ID"], kv["VERSION"]))}
	if h, err := volume.ReadFile(f, "etc/hostname", maxSmallFile); err == nil {
		o.Hostname = strp(strings.TrimSpace(string(h)))
	}
	o.Kernels = kernels(f)
	apps, arch, when, problem := dpkgPackages(f)
	if problem != "" {
		inf.Problems = append(inf.Problems, problem)
	}
	if apps == nil {
		if rpms, rwhen, found, rproblem := rpmPackages(f); found {
			// an rpm guest: a database offvm cannot read leaves the
			// applications unknown (null), never an empty list
			if rproblem != "" {
				inf.Problems = append(inf.Problems, rproblem)
			}
			o.LastUpdate = rwhen
			inf.OS = o
			inf.Applications = nil
			if rpms != nil {
				inf.Patches = linuxPatches(f)
				inf.Applications = appList(rpms)
			}
			return true
		}
	}
	o.Arch, o.LastUpdate = arch, when
	inf.OS = o
	inf.Patches = linuxPatches(f)
	inf.Applications = appList(apps)
	return true
}

func appList(apps []Application) []any {
	list := make([]any, 0, len(apps))
	for _, a := range apps {
		list = append(list, a)
	}
	return list
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// parseOSRelease reads os-release's KEY=value lines, with shell quoting.
func parseOSRelease(b []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		kv[k] = v
	}
	return kv
}

// kernels lists the kernel images in /boot.
func kernels(f volume.FS) []string {
	a, err := volume.Resolve(f, "boot")
	if err != nil {
		return nil
	}
	ents, err := f.ReadDir(a.Ino)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name, "vmlinuz-") {
			out = append(out, strings.TrimPrefix(e.Name, "vmlinuz-"))
		}
	}
	sort.Strings(out)
	return out
}

// dpkgPackages reads /var/lib/dpkg/status: the installed packages, the
// architecture of the system's C library, and when dpkg last changed
// anything (the status file's mtime: dpkg rewrites it on every change).
func dpkgPackages(f volume.FS) (apps []Application, arch, when *string, problem string) {
	const status = "var/lib/dpkg/status"
	a, err := volume.Resolve(f, status)
	if err != nil {
		return nil, nil, nil, ""
	}
	b, err := volume.ReadFile(f, status, maxStatusFile)
	if err != nil {
		return nil, nil, nil, "dpkg status: " + err.Error()
	}
	for _, para := range bytes.Split(b, []byte("\n\n")) {
		fields := map[string]string{}
		for _, line := range strings.Split(string(para), "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				fields[k] = v
			}
		}
		if fields["Package"] == "" || !strings.HasSuffix(fields["Status"], " installed") {
			continue
		}
		apps = append(apps, Application{Name: fields["Package"], Version: strp(fields["Version"]), Publisher: strp(fields["Maintainer"])})
		if fields["Package"] == "libc6" {
			arch = strp(fields["Architecture"])
		}
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	if !a.Mtime.IsZero() {
		s := a.Mtime.UTC().Format(time.RFC3339)
		when = &s
	}
	return apps, arch, when, ""
}

// linuxPatches lists the bundles offvm applied: /var/lib/offvm/patches/<id>,
// each a small JSON record written by the patcher.
func linuxPatches(f volume.FS) []any {
	out := []any{}
	a, err := volume.Resolve(f, "var/lib/offvm/patches")
	if err != nil {
		return out
	}
	ents, err := f.ReadDir(a.Ino)
	if err != nil {
		return out
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	for _, e := range ents {
		p := Patch{ID: e.Name}
		if b, err := volume.ReadFile(f, "var/lib/offvm/patches/"+e.Name, maxSmallFile); err == nil {
			var rec struct {
				Applied string `json:"applied"`
			}
			if json.Unmarshal(b, &rec) == nil {
				p.Applied = strp(rec.Applied)
			}
		}
		out = append(out, p)
	}
	return out
}
