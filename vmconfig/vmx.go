package vmconfig

import (
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// diskKey matches the device keys of a .vmx: scsi0:1.fileName,
// sata0:0.deviceType, ide1:0.present, nvme0:0.fileName.
var diskKey = regexp.MustCompile(`^(scsi|sata|ide|nvme)(\d+):(\d+)\.(filename|devicetype|present|mode)$`)

// IsVMX tells a .vmx by content: VMware writes config.version and
// virtualHW.version into every one.
func IsVMX(d Dict) bool {
	_, a := d["config.version"]
	_, b := d["virtualhw.version"]
	return a || b
}

// ParseVMX reads a VMware .vmx. The state is not set here: State decides
// it from checkpoint.vmState and the files beside the configuration.
func ParseVMX(r io.Reader) (*VM, error) {
	d, err := readDict(r, IsVMX, "no config.version or virtualHW.version key")
	if err != nil {
		return nil, err
	}
	vm := &VM{Kind: VMware, Name: d["displayname"], UUID: d["uuid.bios"], OSType: strp(d["guestos"])}
	if n := d.int("numvcpus"); n != nil && *n > 0 && *n < 1<<16 {
		vm.CPUs = intp(int(*n))
	}
	if n := d.int("memsize"); n != nil && *n > 0 {
		vm.MemoryMiB = n
	}
	// checkpoint.vmState names the .vmss a suspended VM resumes from; it
	// is "" once the VM resumed or was powered off.
	vm.StateFile = d["checkpoint.vmstate"]
	vm.Disks = vmxDisks(d)
	vm.NICs = vmxNICs(d)
	return vm, nil
}

// vmxDisks lists the hard disks (not CD images) that are present, in
// controller order.
func vmxDisks(d Dict) []Disk {
	type dev struct{ file, typ, present, ctl, slot string }
	devs := map[string]*dev{}
	for k, v := range d {
		m := diskKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		id := m[1] + m[2] + ":" + m[3]
		x := devs[id]
		if x == nil {
			x = &dev{ctl: m[1] + m[2], slot: m[2] + ":" + m[3]}
			devs[id] = x
		}
		switch m[4] {
		case "filename":
			x.file = v
		case "devicetype":
			x.typ = strings.ToLower(v)
		case "present":
			x.present = strings.ToLower(v)
		}
	}
	ids := make([]string, 0, len(devs))
	for id := range devs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Disk
	for _, id := range ids {
		x := devs[id]
		if x.file == "" || x.present == "false" {
			continue
		}
		// deviceType is absent or "disk"/"scsi-hardDisk"/"ata-hardDisk"
		// for disks; "cdrom-image", "atapi-cdrom", "cdrom-raw" otherwise
		if x.typ != "" && !strings.Contains(x.typ, "disk") {
			continue
		}
		ctl, slot := x.ctl, x.slot
		out = append(out, Disk{Path: x.file, Controller: &ctl, Slot: &slot})
	}
	return out
}

// vmxNICs lists the present ethernetN adapters, in order.
func vmxNICs(d Dict) []NIC {
	var out []NIC
	for i := 0; i < 64; i++ {
		p := "ethernet" + strconv.Itoa(i) + "."
		if !d.bool(p+"present", false) {
			continue
		}
		mac := d[p+"address"]
		if t := strings.ToLower(d[p+"addresstype"]); mac == "" || t == "generated" || t == "vpx" {
			if g := d[p+"generatedaddress"]; g != "" {
				mac = g
			}
		}
		network := d[p+"networkname"]
		if network == "" {
			network = d[p+"connectiontype"] // bridged, nat, hostonly
		}
		out = append(out, NIC{MAC: strp(strings.ToLower(mac)), Network: strp(network), Model: strp(d[p+"virtualdev"])})
	}
	return out
}
