package vmconfig

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The parts of a VirtualBox .vbox (settings format 1.x) that say what the
// machine is. Element names are matched without the namespace.
type vboxFile struct {
	XMLName xml.Name    `xml:"VirtualBox"`
	Machine vboxMachine `xml:"Machine"`
}

type vboxMachine struct {
	UUID            string         `xml:"uuid,attr"`
	Name            string         `xml:"name,attr"`
	OSType          string         `xml:"OSType,attr"`
	StateFile       string         `xml:"stateFile,attr"` // set while the machine is saved
	CurrentSnapshot string         `xml:"currentSnapshot,attr"`
	Disks           []vboxMedium   `xml:"MediaRegistry>HardDisks>HardDisk"`
	Hardware        vboxHardware   `xml:"Hardware"`
	OldControllers  []vboxCtl      `xml:"StorageControllers>StorageController"` // settings before 1.9
	Snapshots       []vboxSnapshot `xml:"Snapshot"`
}

type vboxMedium struct {
	UUID     string       `xml:"uuid,attr"`
	Location string       `xml:"location,attr"`
	Children []vboxMedium `xml:"HardDisk"`
}

type vboxHardware struct {
	CPU struct {
		Count *int `xml:"count,attr"`
	} `xml:"CPU"`
	Memory struct {
		RAMSize *int64 `xml:"RAMSize,attr"`
	} `xml:"Memory"`
	Adapters    []vboxAdapter `xml:"Network>Adapter"`
	Controllers []vboxCtl     `xml:"StorageControllers>StorageController"`
}

type vboxAdapter struct {
	Slot     string    `xml:"slot,attr"`
	Enabled  string    `xml:"enabled,attr"`
	MAC      string    `xml:"MACAddress,attr"`
	Type     string    `xml:"type,attr"`
	NAT      *struct{} `xml:"NAT"`
	Bridged  *vboxNet  `xml:"BridgedInterface"`
	HostOnly *vboxNet  `xml:"HostOnlyInterface"`
	Internal *vboxNet  `xml:"InternalNetwork"`
	NATNet   *vboxNet  `xml:"NATNetwork"`
}

type vboxNet struct {
	Name string `xml:"name,attr"`
}

type vboxCtl struct {
	Name    string `xml:"name,attr"`
	Devices []struct {
		Type   string `xml:"type,attr"`
		Port   string `xml:"port,attr"`
		Device string `xml:"device,attr"`
		Image  struct {
			UUID string `xml:"uuid,attr"`
		} `xml:"Image"`
	} `xml:"AttachedDevice"`
}

type vboxSnapshot struct {
	UUID      string         `xml:"uuid,attr"`
	Name      string         `xml:"name,attr"`
	TimeStamp string         `xml:"timeStamp,attr"`
	StateFile string         `xml:"stateFile,attr"`
	Children  []vboxSnapshot `xml:"Snapshots>Snapshot"`
}

// IsVBox tells a .vbox by content: an XML document whose root is
// VirtualBox.
func IsVBox(head []byte) bool {
	return xmlRoot(head) == "VirtualBox"
}

// ParseVBox reads a VirtualBox machine settings file.
func ParseVBox(r io.Reader) (*VM, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if !IsVBox(b) {
		return nil, fmt.Errorf("root element is not VirtualBox: %w", ErrNotConfig)
	}
	var f vboxFile
	if err := decodeXML(b, &f); err != nil {
		return nil, err
	}
	m := f.Machine
	vm := &VM{Kind: VirtualBox, Name: m.Name, UUID: strings.Trim(m.UUID, "{}"), OSType: strp(m.OSType), StateFile: m.StateFile}
	hw := m.Hardware
	if c := hw.CPU.Count; c != nil && *c > 0 {
		vm.CPUs = intp(*c)
	}
	if c := hw.Memory.RAMSize; c != nil && *c > 0 {
		vm.MemoryMiB = int64p(*c)
	}
	for _, a := range hw.Adapters {
		if a.Enabled != "true" {
			continue
		}
		vm.NICs = append(vm.NICs, NIC{MAC: strp(vboxMAC(a.MAC)), Network: strp(a.network()), Model: strp(a.Type)})
	}
	media, parent := map[string]string{}, map[string]string{}
	flattenMedia(m.Disks, "", media, parent)
	ctls := hw.Controllers
	if len(ctls) == 0 {
		ctls = m.OldControllers
	}
	for _, c := range ctls {
		for _, d := range c.Devices {
			if d.Type != "HardDisk" {
				continue
			}
			loc, ok := media[strings.ToLower(d.Image.UUID)]
			if !ok {
				continue // a disk in the global registry: not in this file
			}
			name, slot := c.Name, "port "+d.Port+" device "+orZero(d.Device)
			vm.Disks = append(vm.Disks, Disk{Path: loc, Controller: &name, Slot: &slot})
			// the differencing chain's bases: frozen by snapshots
			// (bounded: duplicate uuids in a hostile file could loop)
			for p, n := parent[strings.ToLower(d.Image.UUID)], 0; p != "" && n < 64; p, n = parent[p], n+1 {
				vm.Disks = append(vm.Disks, Disk{Path: media[p], Controller: &name, Slot: &slot, Snapshot: "base"})
			}
		}
	}
	vm.Snapshots = vboxSnapshots(m.Snapshots, nil, m.CurrentSnapshot, nil)
	return vm, nil
}

// network says what an enabled adapter is attached to; DisabledModes
// (remembered settings of other modes) are not read.
func (a vboxAdapter) network() string {
	switch {
	case a.Bridged != nil:
		return a.Bridged.Name
	case a.HostOnly != nil:
		return a.HostOnly.Name
	case a.Internal != nil:
		return a.Internal.Name
	case a.NATNet != nil:
		return a.NATNet.Name
	case a.NAT != nil:
		return "NAT"
	}
	return ""
}

// vboxMAC writes VirtualBox's 080027AABBCC as 08:00:27:aa:bb:cc.
func vboxMAC(s string) string {
	if len(s) != 12 {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToLower(s[i : i+2]))
	}
	return b.String()
}

// flattenMedia maps each medium's uuid to its location, and to its
// parent's uuid (the registry nests differencing children in parents).
func flattenMedia(ms []vboxMedium, up string, loc, parent map[string]string) {
	for _, m := range ms {
		id := strings.ToLower(m.UUID)
		loc[id] = m.Location
		if up != "" && id != up {
			parent[id] = up
		}
		flattenMedia(m.Children, id, loc, parent)
	}
}

func vboxSnapshots(ss []vboxSnapshot, parent *string, current string, out []Snapshot) []Snapshot {
	for _, s := range ss {
		out = append(out, Snapshot{ID: strings.Trim(s.UUID, "{}"), Name: s.Name, Parent: parent, Created: strp(s.TimeStamp),
			Current: s.UUID == current, Memory: strp(s.StateFile)})
		id := strings.Trim(s.UUID, "{}")
		out = vboxSnapshots(s.Children, &id, current, out)
	}
	return out
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// xmlRoot returns the local name of the first element of an XML document,
// "" when head is not XML.
func xmlRoot(head []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(head))
	dec.Strict = false
	for i := 0; i < 64; i++ {
		tok, err := dec.RawToken()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Name.Local
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return ""
			}
		}
	}
	return ""
}

// decodeXML decodes a whole document; the error says where it broke.
func decodeXML(b []byte, v any) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "us-ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("XML encoding %q is not supported", label)
	}
	return dec.Decode(v) // its errors say "XML syntax error on line N"

}
