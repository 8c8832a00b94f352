package inspect

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// The guest's /etc/fstab says which volume is / and where the others
// go: inspection follows it instead of taking the first volume with an
// os-release (a backup copy of the root, a second installed system).

// fstabEntry is one line of fstab: what to mount and where.
type fstabEntry struct{ spec, dir string }

// parseFstab reads fstab lines (comments, swap and pseudo file systems
// left out); octal escapes in paths (\040 for a space) are decoded.
func parseFstab(b []byte) []fstabEntry {
	var out []fstabEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || !strings.HasPrefix(f[1], "/") {
			continue
		}
		out = append(out, fstabEntry{unescapeFstab(f[0]), unescapeFstab(f[1])})
	}
	return out
}

func unescapeFstab(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// volID is what fstab can name a volume by.
type volID struct {
	part     string // "p3", "p101"
	uuid     string // the file system's UUID, lower case
	label    string
	partUUID string // the GPT partition GUID
	vg, lv   string
}

// names says whether spec (UUID=, LABEL=, PARTUUID=, /dev/mapper/VG-LV,
// /dev/VG/LV, /dev/disk/by-*/) names this volume.
func (id volID) names(spec string) bool {
	spec = strings.Trim(spec, `"`)
	eq := func(a, b string) bool { return a != "" && strings.EqualFold(strings.Trim(a, `"`), b) }
	for _, p := range []struct {
		prefix, val string
	}{{"UUID=", id.uuid}, {"/dev/disk/by-uuid/", id.uuid}, {"PARTUUID=", id.partUUID}, {"/dev/disk/by-partuuid/", id.partUUID}} {
		if v, ok := strings.CutPrefix(spec, p.prefix); ok {
			return eq(v, p.val)
		}
	}
	for _, p := range []string{"LABEL=", "/dev/disk/by-label/"} {
		if v, ok := strings.CutPrefix(spec, p); ok {
			return id.label != "" && strings.Trim(v, `"`) == id.label
		}
	}
	if id.lv == "" {
		return false
	}
	if v, ok := strings.CutPrefix(spec, "/dev/mapper/"); ok {
		// device-mapper doubles the dashes within each name
		return v == strings.ReplaceAll(id.vg, "-", "--")+"-"+strings.ReplaceAll(id.lv, "-", "--")
	}
	return spec == "/dev/"+id.vg+"/"+id.lv
}

// volIDs lists what each volume of the image is known by.
func volIDs(im *mount.Image, vols []*mount.Volume) []volID {
	var out []volID
	for _, v := range vols {
		id := volID{part: partName(v), partUUID: v.Partition.GUID}
		if v.FS != nil {
			id.label = v.FS.Label()
		}
		if v.Dev != nil {
			id.uuid = fsUUID(v.Dev)
		}
		if im != nil {
			id.vg, id.lv, _ = strings.Cut(im.LVName(v.Partition.Number), "/")
		}
		out = append(out, id)
	}
	return out
}

// mountsOf maps the mount points of fstab to the volumes they name;
// lines naming no volume of the image (network shares, a missing disk)
// are left out.
func mountsOf(fstab []fstabEntry, ids []volID) map[string]string {
	out := map[string]string{}
	for _, e := range fstab {
		for _, id := range ids {
			if id.names(e.spec) {
				out[e.dir] = id.part
				break
			}
		}
	}
	return out
}

// linuxRoot picks the volume that is / among the volumes with an
// os-release: the one the candidates' fstab names as /, the first
// candidate when none does. It returns the mounts of that root's fstab.
func linuxRoot(im *mount.Image, vols []*mount.Volume) (*mount.Volume, map[string]string) {
	var cands []*mount.Volume
	for _, v := range vols {
		if v.FS != nil && hasOSRelease(systemTree(v.FS)) {
			cands = append(cands, v)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	ids := volIDs(im, vols)
	byPart := map[string]*mount.Volume{}
	for _, v := range cands {
		byPart[partName(v)] = v
	}
	for _, v := range cands {
		b, err := volume.ReadFile(systemTree(v.FS), "etc/fstab", maxSmallFile)
		if err != nil {
			continue
		}
		m := mountsOf(parseFstab(b), ids)
		if root, ok := byPart[m["/"]]; ok {
			if root != v { // a copy naming the real root: take the root's own fstab
				if b, err := volume.ReadFile(systemTree(root.FS), "etc/fstab", maxSmallFile); err == nil {
					if m2 := mountsOf(parseFstab(b), ids); m2["/"] == m["/"] {
						m = m2
					}
				}
			}
			return root, m
		}
	}
	return cands[0], nil
}

func systemTree(f volume.FS) volume.FS {
	if s, ok := f.(interface{ SystemTree() volume.FS }); ok {
		return s.SystemTree() // btrfs: the subvolume mounted as / (Fedora's "root")
	}
	return f
}

func hasOSRelease(f volume.FS) bool {
	return exists(f, "etc/os-release") || exists(f, "usr/lib/os-release")
}

// fsUUID is the UUID blkid reports for the file system on dev (ext2/3/4,
// XFS, btrfs; FAT's volume serial as XXXX-XXXX), "" when unknown.
func fsUUID(dev volume.Device) string {
	b := make([]byte, 4096)
	if n, _ := dev.ReadAt(b, 0); n < len(b) {
		return ""
	}
	switch {
	case string(b[0:4]) == "XFSB":
		return uuidString(b[32:48])
	case b[1024+0x38] == 0x53 && b[1024+0x39] == 0xEF:
		return uuidString(b[1024+0x68 : 1024+0x78])
	case b[510] == 0x55 && b[511] == 0xAA && string(b[0x52:0x57]) == "FAT32":
		return fmt.Sprintf("%02X%02X-%02X%02X", b[0x46], b[0x45], b[0x44], b[0x43])
	case b[510] == 0x55 && b[511] == 0xAA && string(b[0x36:0x39]) == "FAT":
		return fmt.Sprintf("%02X%02X-%02X%02X", b[0x2a], b[0x29], b[0x28], b[0x27])
	}
	bt := make([]byte, 0x40)
	if n, _ := dev.ReadAt(bt, 0x10000+0x20); n == len(bt) && string(bt[0x20:0x28]) == "_BHRfS_M" {
		return uuidString(bt[0:16])
	}
	return ""
}

func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
