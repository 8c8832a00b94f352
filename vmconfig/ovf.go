package vmconfig

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The parts of an OVF descriptor (DMTF DSP0243, 1.x and 2.x) that say
// what the machine is. Names are matched without namespaces: OVF 1.0,
// 2.0 and VMware's exports differ in prefixes, not in local names.
type ovfEnvelope struct {
	Files []struct {
		ID   string `xml:"id,attr"`
		Href string `xml:"href,attr"`
		Size string `xml:"size,attr"`
	} `xml:"References>File"`
	Disks []struct {
		ID       string `xml:"diskId,attr"`
		FileRef  string `xml:"fileRef,attr"`
		Capacity string `xml:"capacity,attr"`
		Units    string `xml:"capacityAllocationUnits,attr"`
		Format   string `xml:"format,attr"`
	} `xml:"DiskSection>Disk"`
	Systems    []ovfSystem `xml:"VirtualSystem"`
	Collection struct {
		Systems []ovfSystem `xml:"VirtualSystem"`
	} `xml:"VirtualSystemCollection"`
}

type ovfSystem struct {
	ID       string `xml:"id,attr"`
	Name     string `xml:"Name"`
	OS       string `xml:"OperatingSystemSection>Description"`
	Hardware struct {
		Items []ovfItem `xml:"Item"`
		Store []ovfItem `xml:"StorageItem"`
		Eth   []ovfItem `xml:"EthernetPortItem"`
	} `xml:"VirtualHardwareSection"`
}

// ovfItem is a CIM resource allocation (rasd:, sasd: or epasd: fields).
type ovfItem struct {
	InstanceID      string   `xml:"InstanceID"`
	ResourceType    string   `xml:"ResourceType"`
	ResourceSubType string   `xml:"ResourceSubType"`
	ElementName     string   `xml:"ElementName"`
	Quantity        string   `xml:"VirtualQuantity"`
	Units           string   `xml:"AllocationUnits"`
	HostResource    []string `xml:"HostResource"`
	Parent          string   `xml:"Parent"`
	Address         string   `xml:"Address"`
	AddressOnParent string   `xml:"AddressOnParent"`
	Connection      []string `xml:"Connection"`
}

// CIM resource types (DSP1041) that the inventory reads.
const (
	rtCPU      = "3"
	rtMemory   = "4"
	rtEthernet = "10"
	rtDisk     = "17"
)

// IsOVF tells an OVF descriptor by its root element.
func IsOVF(head []byte) bool {
	return xmlRoot(head) == "Envelope" && strings.Contains(string(head), "dmtf.org/ovf/envelope")
}

// ParseOVF reads an OVF descriptor. Its first virtual system is the VM;
// disk paths are the References' hrefs (members of the OVA, or files
// beside the .ovf).
func ParseOVF(r io.Reader) (*VM, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if !IsOVF(b) {
		return nil, fmt.Errorf("root element is not an OVF Envelope: %w", ErrNotConfig)
	}
	var env ovfEnvelope
	if err := decodeXML(b, &env); err != nil {
		return nil, err
	}
	systems := append(env.Systems, env.Collection.Systems...)
	if len(systems) == 0 {
		return nil, fmt.Errorf("OVF has no VirtualSystem: %w", ErrNotConfig)
	}
	sys := systems[0]
	vm := &VM{Kind: OVF, Name: sys.Name, OSType: strp(strings.TrimSpace(sys.OS))}
	if vm.Name == "" {
		vm.Name = sys.ID
	}
	items := append(append(append([]ovfItem{}, sys.Hardware.Items...), sys.Hardware.Store...), sys.Hardware.Eth...)
	byID := map[string]ovfItem{}
	for _, it := range items {
		byID[strings.TrimSpace(it.InstanceID)] = it
	}
	files := map[string]string{}
	for _, f := range env.Files {
		files[f.ID] = f.Href
	}
	disks := map[string]ovfDisk{}
	for _, d := range env.Disks {
		od := ovfDisk{file: files[d.FileRef]}
		if n, ok := ovfQuantity(d.Capacity, d.Units, "byte"); ok {
			od.capacity = int64p(n)
		}
		disks[d.ID] = od
	}
	for _, it := range items {
		switch strings.TrimSpace(it.ResourceType) {
		case rtCPU:
			if n, err := strconv.Atoi(strings.TrimSpace(it.Quantity)); err == nil && n > 0 {
				vm.CPUs = intp(n)
			}
		case rtMemory:
			if n, ok := ovfQuantity(it.Quantity, it.Units, "byte * 2^20"); ok {
				vm.MemoryMiB = int64p(n >> 20)
			}
		case rtEthernet:
			var net string
			if len(it.Connection) > 0 {
				net = strings.TrimSpace(it.Connection[0])
			}
			vm.NICs = append(vm.NICs, NIC{MAC: strp(strings.ToLower(strings.TrimSpace(it.Address))), Network: strp(net), Model: strp(it.ResourceSubType)})
		case rtDisk:
			vm.Disks = append(vm.Disks, ovfItemDisk(it, byID, disks))
		}
	}
	return vm, nil
}

// ovfDisk is one DiskSection entry: its file and stated capacity.
type ovfDisk struct {
	file     string
	capacity *int64
}

// ovfItemDisk resolves a disk item: HostResource "ovf:/disk/ID" names a
// DiskSection entry, Parent the controller item.
func ovfItemDisk(it ovfItem, byID map[string]ovfItem, disks map[string]ovfDisk) Disk {
	var d Disk
	for _, h := range it.HostResource {
		h = strings.TrimSpace(h)
		switch {
		case strings.HasPrefix(h, "ovf:/disk/"):
			od := disks[strings.TrimPrefix(h, "ovf:/disk/")]
			d.Path, d.Capacity = od.file, od.capacity
		case strings.HasPrefix(h, "ovf:/file/"):
			d.Path = strings.TrimPrefix(h, "ovf:/file/")
		}
	}
	if c, ok := byID[strings.TrimSpace(it.Parent)]; ok {
		d.Controller = strp(strings.TrimSpace(c.ElementName))
	}
	d.Slot = strp(strings.TrimSpace(it.AddressOnParent))
	return d
}

// unitRE reads programmatic units as DSP0004 writes them: "byte * 2^20",
// "byte*10^6"; the older names (KiloBytes, MegaBytes, GigaBytes) too.
var unitRE = regexp.MustCompile(`^byte\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?$`)

// ovfQuantity returns value × unit in bytes.
func ovfQuantity(value, unit, def string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	u := strings.TrimSpace(unit)
	if u == "" {
		u = def
	}
	var mult float64
	switch strings.ToLower(u) {
	case "kilobytes":
		mult = 1 << 10
	case "megabytes":
		mult = 1 << 20
	case "gigabytes":
		mult = 1 << 30
	default:
		m := unitRE.FindStringSubmatch(strings.ToLower(u))
		if m == nil {
			return 0, false
		}
		mult = 1
		if m[1] != "" {
			base, _ := strconv.Atoi(m[1])
			exp, _ := strconv.Atoi(m[2])
			mult = math.Pow(float64(base), float64(exp))
		}
	}
	v := float64(n) * mult
	if v > math.MaxInt64/2 {
		return 0, false
	}
	return int64(v), true
}
