// Package vmconfig reads the configuration files hypervisors keep beside
// their disks: VMware .vmx and .vmsd, VirtualBox .vbox, libvirt domain
// XML, OVF descriptors and OVA archives. Each parser turns one file (an
// io.Reader) into a VM: its hardware, its disks and where they attach,
// its snapshots, and the state file it would resume from.
//
// Parsers read only; what a file does not say stays nil or empty, never
// guessed. Which state files exist on the host is decided by State (in
// state.go), which looks beside the configuration.
package vmconfig

import (
	"errors"
	"io"
)

// Kinds of configuration.
const (
	VMware     = "vmware"
	VirtualBox = "virtualbox"
	Libvirt    = "libvirt"
	OVF        = "ovf"
)

// States a VM's files can tell.
const (
	StateOff       = "off"
	StateSaved     = "saved"     // VirtualBox, libvirt, Hyper-V: memory saved to a file
	StateSuspended = "suspended" // VMware's word for the same
	StateRunning   = "running"   // a lock the hypervisor holds
)

// ErrNotConfig is wrapped by parsers when the content is not theirs.
var ErrNotConfig = errors.New("not a VM configuration")

// maxConfig bounds what a parser reads: real configurations are a few
// hundred KiB at most, and a bound keeps a hostile file from costing memory.
const maxConfig = 8 << 20

// VM is one virtual machine as its configuration describes it.
type VM struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	UUID   string `json:"uuid,omitempty"`
	Config string `json:"config"` // path of the configuration file
	// State is off, saved, suspended or running; "" when the files do
	// not tell (OVF packages have no state).
	State string `json:"state"`
	// StateFile is the file holding the memory the VM resumes from
	// (.vmss, .sav, managed save), as the configuration names it or as
	// State found it; "" when there is none.
	StateFile string `json:"state_file"`
	// Lock is the file that says the VM runs (a .lck), when one exists.
	Lock      string     `json:"lock,omitempty"`
	CPUs      *int       `json:"cpus"`
	MemoryMiB *int64     `json:"memory_mib"`
	OSType    *string    `json:"os_type"`
	NICs      []NIC      `json:"nics"`
	Disks     []Disk     `json:"disks"`
	Snapshots []Snapshot `json:"snapshots"`
}

// NIC is one network adapter.
type NIC struct {
	MAC     *string `json:"mac"`
	Network *string `json:"network"`
	Model   *string `json:"model"`
}

// Disk is one virtual disk the VM attaches.
type Disk struct {
	// Path is the disk file as the configuration names it (relative
	// paths are relative to the configuration's folder; see Resolve).
	Path       string  `json:"path"`
	Controller *string `json:"controller"` // "scsi0", "SATA Controller", "virtio"
	Slot       *string `json:"slot"`       // "0:1", "port 0 device 0", "vda"
	// Capacity is the virtual size the configuration states (OVF).
	Capacity *int64 `json:"capacity,omitempty"`
	// Snapshot is the id of the snapshot that froze this disk ("base"
	// when the format does not say which), when it is a base of the
	// current disk's chain rather than the current disk.
	Snapshot string `json:"snapshot,omitempty"`
}

// Snapshot is one snapshot the configuration lists.
type Snapshot struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Parent  *string `json:"parent"`
	Created *string `json:"created"`
	Current bool    `json:"current"`
	// Memory is the snapshot's memory file (.vmsn, .sav): it does not
	// make the VM sleep, as the VM never resumes from it by itself.
	Memory *string `json:"memory"`
}

// readAll reads at most maxConfig bytes; a longer file is refused rather
// than cut, so a parser never works on half a document.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfig+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfig {
		return nil, errors.New("configuration larger than 8 MiB")
	}
	return b, nil
}

func intp(n int) *int       { return &n }
func int64p(n int64) *int64 { return &n }
func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
