package debpkg

import (
	"bufio"
	"bytes"
	"strings"
)

// StatusFile is the guest's dpkg database, relative to its root.
const StatusFile = "var/lib/dpkg/status"

// Installed is one package dpkg's status file says is installed.
type Installed struct {
	Version string
	Arch    string
}

// ParseStatus reads dpkg's status file: the packages whose Status is
// "install ok installed" (or held), by name. Half-installed or
// config-files entries are not installed versions.
func ParseStatus(b []byte) map[string]Installed {
	out := map[string]Installed{}
	for _, para := range bytes.Split(b, []byte("\n\n")) {
		f := fields(para)
		name, status := f["Package"], strings.Fields(f["Status"])
		if name == "" || len(status) != 3 || status[2] != "installed" {
			continue
		}
		key := name
		if a := f["Architecture"]; a != "" && a != "all" && f["Multi-Arch"] == "same" {
			key = name + ":" + a
		}
		out[key] = Installed{Version: f["Version"], Arch: f["Architecture"]}
	}
	return out
}

// fields reads one paragraph's "Key: value" lines; continuation lines
// (starting with a space) belong to the field before and are skipped.
func fields(para []byte) map[string]string {
	f := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(para))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

// Lookup finds pkg (built for arch) among the installed packages.
func Lookup(inst map[string]Installed, pkg, arch string) (Installed, bool) {
	if i, ok := inst[pkg+":"+arch]; ok {
		return i, true
	}
	i, ok := inst[pkg]
	return i, ok
}
