package library

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/offvm/offvm/vdisk/detect"
	"github.com/offvm/offvm/vmconfig"
)

// VMs is what a library's VM configurations say of its disks: which VM
// each disk belongs to, and which disks sleep under a saved state.
type VMs struct {
	VMs  []*vmconfig.VM
	OVAs map[string]*vmconfig.OVA // by absolute path of the .ova
	// Problems name configurations that could not be read.
	Problems []string

	byDisk map[string][]attach // by diskKey
	broken map[string]string   // folder → the first unreadable configuration's error
}

type attach struct {
	vm   *vmconfig.VM
	disk vmconfig.Disk
}

// VMInfo is info.json's "vm": the VM a disk belongs to, and the disk's
// place in it.
type VMInfo struct {
	Name      string              `json:"name"`
	Kind      string              `json:"kind"`
	Config    string              `json:"config"`
	State     *string             `json:"state"`
	StateFile *string             `json:"state_file"`
	CPUs      *int                `json:"cpus"`
	MemoryMiB *int64              `json:"memory_mib"`
	OSType    *string             `json:"os_type"`
	NICs      []vmconfig.NIC      `json:"nics"`
	Disk      VMDisk              `json:"disk"`
	Snapshots []vmconfig.Snapshot `json:"snapshots"`
}

// VMDisk is the disk's place in its VM.
type VMDisk struct {
	Controller *string `json:"controller"`
	Slot       *string `json:"slot"`
	// Role is "current" for the disk the VM runs on, "snapshot" for a
	// base its current disk's chain grows from.
	Role     string  `json:"role"`
	Snapshot *string `json:"snapshot"`
}

// maxConfigFile: configurations are small; a bigger file is read only
// when its head says it is an OVA.
const maxConfigFile = 8 << 20

// ScanVMs reads every VM configuration under root (searched recursively,
// by content) and in extra (folders such as /etc/libvirt/qemu, not
// recursed). When root is one file, its folder is searched.
func ScanVMs(root string, extra []string, opts vmconfig.Options) *VMs {
	return ScanVMsBeside(root, extra, opts, nil)
}

// notConfigs are the formats whose files cannot be configurations: they
// start with a binary container header, a partition table or a file
// system. (A VMDK may be a text descriptor, an OVA is a package: both are
// read.)
var notConfigs = map[string]bool{"qcow2": true, "vhd": true, "vhdx": true, "raw": true}

// ScanVMsBeside is ScanVMs that knows the images Walk found under root:
// those of notConfigs are not opened again to look for a configuration.
func ScanVMsBeside(root string, extra []string, opts vmconfig.Options, images []Entry) *VMs {
	skip := map[string]bool{}
	for _, e := range images {
		if notConfigs[e.Format] {
			skip[e.Path] = true
		}
	}
	x := &VMs{OVAs: map[string]*vmconfig.OVA{}, byDisk: map[string][]attach{}, broken: map[string]string{}}
	if st, err := os.Stat(root); err == nil && !st.IsDir() {
		root = filepath.Dir(root)
	}
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, p)
		return nil
	})
	for _, dir := range extra {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if !de.IsDir() {
				files = append(files, filepath.Join(dir, de.Name()))
			}
		}
	}
	for _, p := range files {
		if !skip[p] {
			x.consider(p, opts)
		}
	}
	x.addBases()
	return x
}

// addBases gives the VM to the bases of each of its disks' differencing
// chains that no configuration lists (a VMware chain without its .vmsd, a
// qcow2 backing file): the VM's state protects them too. Only the VMs'
// own disks are opened, headers only.
func (x *VMs) addBases() {
	for _, vm := range x.VMs {
		for _, d := range vm.Disks {
			p := d.Path
			if _, _, ok := InOVA(p); ok || !filepath.IsAbs(p) {
				continue
			}
			for i := 0; i < 32; i++ {
				parent := parentOf(p)
				if parent == "" {
					break
				}
				k := key(parent)
				if !x.names(k, vm) {
					base := d
					base.Path, base.Snapshot = parent, "base"
					x.byDisk[k] = append(x.byDisk[k], attach{vm, base})
				}
				p = parent
			}
		}
	}
}

// names tells whether vm already names the disk with key k.
func (x *VMs) names(k string, vm *vmconfig.VM) bool {
	for _, a := range x.byDisk[k] {
		if a.vm == vm {
			return true
		}
	}
	return false
}

// parentOf is the parent image of the image at path, "" when it has none
// or cannot be opened.
func parentOf(path string) string {
	if f, err := detect.Probe(path); err != nil || f == "" {
		return ""
	}
	d, err := detect.Open(path, detect.Options{})
	if err != nil {
		return ""
	}
	defer d.Close()
	if p := d.Info().Parent; p != "" {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
	}
	return ""
}

// consider loads p when its content is a configuration.
func (x *VMs) consider(p string, opts vmconfig.Options) {
	name := filepath.Base(p)
	if strings.HasPrefix(name, ".") || IsSidecar(name) {
		return
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return
	}
	kind := sniff(p)
	if kind == "" || kind == "vmsd" || (kind != "ova" && st.Size() > maxConfigFile) {
		return
	}
	vm, ova, err := vmconfig.Load(p, opts)
	if err != nil {
		slog.Warn("VM configuration unreadable", "file", p, "err", err)
		x.Problems = append(x.Problems, err.Error())
		// OVF packages have no state: only the other kinds may hide a sleep
		if d := key(filepath.Dir(p)); x.broken[d] == "" && kind != "ova" && kind != vmconfig.OVF {
			x.broken[d] = err.Error()
		}
		return
	}
	x.VMs = append(x.VMs, vm)
	if ova != nil {
		x.OVAs[key(p)] = ova
	}
	for _, d := range vm.Disks {
		k := key(d.Path)
		if ova != nil { // the disk is read in place: OVA/member
			k = filepath.Join(key(p), filepath.Clean(d.Path))
		}
		x.byDisk[k] = append(x.byDisk[k], attach{vm, d})
	}
}

func sniff(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 8192)
	n, _ := io.ReadFull(f, head)
	return vmconfig.Sniff(head[:n])
}

// key identifies a host file however it was named (relative, through a
// link).
func key(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// diskKey is key for a host file, and OVA/member for a disk in an OVA.
func diskKey(path string) string {
	if ova, member, ok := InOVA(path); ok {
		return filepath.Join(key(ova), member)
	}
	return key(path)
}

// For returns the VM the disk at path belongs to. When several name it,
// a sleeping one comes first: that is the one whose safety matters.
func (x *VMs) For(path string) (*VMInfo, bool) {
	if x.none() {
		return nil, false
	}
	as := x.byDisk[diskKey(path)]
	if len(as) == 0 {
		return nil, false
	}
	sort.SliceStable(as, func(i, j int) bool { return sleeping(as[i].vm) && !sleeping(as[j].vm) })
	return info(as[0].vm, as[0].disk), true
}

func sleeping(vm *vmconfig.VM) bool {
	return vm.State == vmconfig.StateSaved || vm.State == vmconfig.StateSuspended || vm.State == vmconfig.StateRunning
}

func info(vm *vmconfig.VM, d vmconfig.Disk) *VMInfo {
	role := "current"
	if d.Snapshot != "" {
		role = "snapshot"
	}
	vi := &VMInfo{Name: vm.Name, Kind: vm.Kind, Config: vm.Config, State: strp(vm.State), StateFile: strp(vm.StateFile),
		CPUs: vm.CPUs, MemoryMiB: vm.MemoryMiB, OSType: vm.OSType, NICs: vm.NICs, Snapshots: vm.Snapshots,
		Disk: VMDisk{Controller: d.Controller, Slot: d.Slot, Role: role, Snapshot: strp(d.Snapshot)}}
	if vi.NICs == nil {
		vi.NICs = []vmconfig.NIC{}
	}
	if vi.Snapshots == nil {
		vi.Snapshots = []vmconfig.Snapshot{}
	}
	return vi
}

// SleepReason says why the disk at path must not be written because of
// its VM ("" when nothing forbids it): the VM sleeps with its memory in a
// state file (resuming after a disk change corrupts the guest's file
// systems), or it runs.
func (x *VMs) SleepReason(path string) string {
	if x.none() {
		return ""
	}
	for _, a := range x.byDisk[diskKey(path)] {
		if r := reasonOf(a.vm); r != "" {
			return r
		}
	}
	// a configuration beside the disk that cannot be read may be its
	// VM's: whether that VM sleeps is unknown, so nothing is guessed
	if e := x.broken[key(filepath.Dir(path))]; e != "" {
		return "a VM configuration beside it cannot be read, so whether its VM sleeps is unknown: " + e
	}
	return ""
}

// none tells that no configuration names a disk and none is broken: then
// no disk has a VM, and the path look-ups of diskKey (an absolute path and
// its links resolved: about eight stat calls) need not be made.
func (x *VMs) none() bool { return len(x.byDisk) == 0 && len(x.broken) == 0 }

func reasonOf(vm *vmconfig.VM) string {
	switch vm.State {
	case vmconfig.StateSaved, vmconfig.StateSuspended:
		return fmt.Sprintf("VM %q (%s) is %s with its memory in %s: changing its disk would corrupt the guest when it resumes",
			vm.Name, vm.Config, vm.State, vm.StateFile)
	case vmconfig.StateRunning:
		return fmt.Sprintf("VM %q (%s) is running (%s)", vm.Name, vm.Config, vm.Lock)
	}
	return ""
}

// Sleeping lists the VMs whose disks are held read-only by their state.
func (x *VMs) Sleeping() []*vmconfig.VM {
	var out []*vmconfig.VM
	for _, vm := range x.VMs {
		if sleeping(vm) {
			out = append(out, vm)
		}
	}
	return out
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// folderVMs caches one scan per folder for the commands that open single
// images (inspect, reg import, patch of one file): a VM's configuration
// sits beside its disks.
var folderVMs sync.Map // folder → *VMs

// VMsOf returns the VMs of the image's own folder, scanned once per
// process.
func VMsOf(path string) *VMs {
	dir := filepath.Dir(key(path))
	if v, ok := folderVMs.Load(dir); ok {
		return v.(*VMs)
	}
	x := ScanVMs(dir, nil, vmconfig.Options{})
	v, _ := folderVMs.LoadOrStore(dir, x)
	return v.(*VMs)
}

// WriteReason says why a command that writes one image file (reg import,
// patch apply) must not: the VM configurations of its folder say its VM
// sleeps or runs, or another image there builds on it. "" when none.
func WriteReason(path string) string {
	if _, _, ok := InOVA(path); ok {
		return OVAReason
	}
	if IsOVA(path) {
		return PackageError(path).Error()
	}
	if r := VMsOf(path).SleepReason(path); r != "" {
		return r
	}
	return ParentReason(path)
}
