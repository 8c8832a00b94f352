package vmconfig

import (
	"io"
	"strconv"
	"time"
)

// VMSD is a VMware snapshot list (.vmsd) beside a .vmx.
type VMSD struct {
	Snapshots []Snapshot
	// Disks maps each snapshot's uid to the disk files it froze, by the
	// device node ("scsi0:0") they hang on.
	Disks map[string]map[string]string
}

// IsVMSD tells a .vmsd by content: VMware writes snapshot.lastUID into
// every one, even with no snapshot left.
func IsVMSD(d Dict) bool {
	_, ok := d["snapshot.lastuid"]
	return ok
}

// ParseVMSD reads a .vmsd snapshot list.
func ParseVMSD(r io.Reader) (*VMSD, error) {
	d, err := readDict(r, IsVMSD, "no snapshot.lastUID key")
	if err != nil {
		return nil, err
	}
	out := &VMSD{Disks: map[string]map[string]string{}}
	current := d["snapshot.current"]
	for i := 0; i < 4096; i++ {
		p := "snapshot" + strconv.Itoa(i) + "."
		uid, ok := d[p+"uid"]
		if !ok {
			continue
		}
		s := Snapshot{ID: uid, Name: d[p+"displayname"], Parent: strp(d[p+"parent"]), Memory: strp(d[p+"filename"]), Current: uid == current}
		if hi, lo := d.int(p+"createtimehigh"), d.int(p+"createtimelow"); hi != nil && lo != nil {
			// microseconds since 1970, split in two 32-bit halves (the
			// low half is written signed)
			us := *hi<<32 | int64(uint32(*lo))
			t := time.UnixMicro(us).UTC().Format(time.RFC3339)
			s.Created = &t
		}
		disks := map[string]string{}
		for j := 0; j < 256; j++ {
			q := p + "disk" + strconv.Itoa(j) + "."
			if f, ok := d[q+"filename"]; ok {
				disks[d[q+"node"]] = f
			}
		}
		out.Disks[uid] = disks
		out.Snapshots = append(out.Snapshots, s)
	}
	return out, nil
}
