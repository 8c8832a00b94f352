package vmconfig

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The parts of a libvirt domain XML (formatdomain) that say what the
// machine is. A status file (/run/libvirt/qemu/NAME.xml) wraps the same
// domain in <domstatus state="running">.
type libvirtDomain struct {
	Name   string `xml:"name"`
	UUID   string `xml:"uuid"`
	Memory struct {
		Unit  string `xml:"unit,attr"`
		Value string `xml:",chardata"`
	} `xml:"memory"`
	VCPU string `xml:"vcpu"`
	OS   struct {
		Type struct {
			Arch string `xml:"arch,attr"`
		} `xml:"type"`
	} `xml:"os"`
	Disks []struct {
		Type   string `xml:"type,attr"`
		Device string `xml:"device,attr"`
		Source struct {
			File string `xml:"file,attr"`
			Dev  string `xml:"dev,attr"`
		} `xml:"source"`
		Target struct {
			Dev string `xml:"dev,attr"`
			Bus string `xml:"bus,attr"`
		} `xml:"target"`
	} `xml:"devices>disk"`
	Interfaces []struct {
		Type string `xml:"type,attr"`
		MAC  struct {
			Address string `xml:"address,attr"`
		} `xml:"mac"`
		Source struct {
			Network string `xml:"network,attr"`
			Bridge  string `xml:"bridge,attr"`
			Dev     string `xml:"dev,attr"`
		} `xml:"source"`
		Model struct {
			Type string `xml:"type,attr"`
		} `xml:"model"`
	} `xml:"devices>interface"`
}

type libvirtStatus struct {
	State  string        `xml:"state,attr"`
	Domain libvirtDomain `xml:"domain"`
}

// IsLibvirt tells a domain XML (or a libvirt status file) by its root.
func IsLibvirt(head []byte) bool {
	r := xmlRoot(head)
	return r == "domain" || r == "domstatus"
}

// ParseLibvirt reads a libvirt domain XML. A status file gives the state
// libvirt recorded (running, paused).
func ParseLibvirt(r io.Reader) (*VM, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	var dom libvirtDomain
	state := ""
	switch xmlRoot(b) {
	case "domain":
		err = decodeXML(b, &dom)
	case "domstatus":
		var st libvirtStatus
		err = decodeXML(b, &st)
		dom, state = st.Domain, st.State
	default:
		return nil, fmt.Errorf("root element is not domain: %w", ErrNotConfig)
	}
	if err != nil {
		return nil, err
	}
	if dom.Name == "" {
		return nil, fmt.Errorf("domain has no name: %w", ErrNotConfig)
	}
	vm := &VM{Kind: Libvirt, Name: dom.Name, UUID: dom.UUID}
	if state == "running" || state == "paused" {
		// a paused domain still holds its memory in a live qemu
		vm.State = StateRunning
	}
	if n, err := strconv.Atoi(strings.TrimSpace(dom.VCPU)); err == nil && n > 0 {
		vm.CPUs = intp(n)
	}
	if n, ok := libvirtBytes(dom.Memory.Value, dom.Memory.Unit); ok {
		vm.MemoryMiB = int64p(n >> 20)
	}
	for _, d := range dom.Disks {
		if d.Device != "" && d.Device != "disk" {
			continue // cdrom, floppy, lun
		}
		p := d.Source.File
		if p == "" {
			p = d.Source.Dev
		}
		if p == "" {
			continue
		}
		bus, dev := d.Target.Bus, d.Target.Dev
		vm.Disks = append(vm.Disks, Disk{Path: p, Controller: strp(bus), Slot: strp(dev)})
	}
	for _, n := range dom.Interfaces {
		net := n.Source.Network
		if net == "" {
			net = n.Source.Bridge
		}
		if net == "" {
			net = n.Source.Dev
		}
		vm.NICs = append(vm.NICs, NIC{MAC: strp(strings.ToLower(n.MAC.Address)), Network: strp(net), Model: strp(n.Model.Type)})
	}
	return vm, nil
}

// libvirtBytes turns a <memory> value into bytes; libvirt's default unit
// is KiB.
func libvirtBytes(v, unit string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	mult := map[string]int64{
		"b": 1, "bytes": 1, "kb": 1000, "k": 1 << 10, "kib": 1 << 10, "mb": 1000 * 1000, "m": 1 << 20, "mib": 1 << 20,
		"gb": 1000 * 1000 * 1000, "g": 1 << 30, "gib": 1 << 30, "tb": 1000 * 1000 * 1000 * 1000, "t": 1 << 40, "tib": 1 << 40,
	}
	u := strings.ToLower(strings.TrimSpace(unit))
	if u == "" {
		u = "kib"
	}
	m, ok := mult[u]
	if !ok || n > (1<<62)/m {
		return 0, false
	}
	return n * m, true
}
