package vmconfig

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// headSize is what Sniff reads to tell a configuration by content.
const headSize = 8192

// Sniff tells which kind of configuration head (the first bytes of a
// file) starts, "" for none. A .vmsd is reported as "vmsd": it belongs to
// the .vmx beside it and is read with it.
func Sniff(head []byte) string {
	switch {
	case IsOVA(head):
		return "ova"
	case bytes.HasPrefix(bytes.TrimSpace(head), []byte("<")):
		switch {
		case IsVBox(head):
			return VirtualBox
		case IsLibvirt(head):
			return Libvirt
		case IsOVF(head):
			return OVF
		}
		return ""
	}
	// VMware dictionaries: text whose keys say so. The head may end in
	// the middle of a line: drop it.
	if i := bytes.LastIndexByte(head, '\n'); i > 0 && len(head) == headSize {
		head = head[:i]
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return ""
	}
	d, err := ParseDict(head)
	if err != nil {
		return ""
	}
	switch {
	case IsVMX(d):
		return VMware
	case IsVMSD(d):
		return "vmsd"
	}
	return ""
}

// Options say where a hypervisor keeps state outside the configuration's
// folder.
type Options struct {
	// LibvirtSaveDirs are searched for NAME.save, libvirt's managed save
	// (besides the XML's own folder); nil means /var/lib/libvirt/qemu/save.
	LibvirtSaveDirs []string
}

// Load reads the configuration at path by its content, makes its disk
// paths absolute, reads a .vmx's snapshot list, and finds its state from
// the files beside it. An OVA is loaded with its tar index.
func Load(path string, opts Options) (*VM, *OVA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	head := make([]byte, headSize)
	n, _ := io.ReadFull(f, head)
	kind := Sniff(head[:n])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	var vm *VM
	var ova *OVA
	switch kind {
	case VMware:
		vm, err = ParseVMX(f)
	case VirtualBox:
		vm, err = ParseVBox(f)
	case Libvirt:
		vm, err = ParseLibvirt(f)
	case OVF:
		vm, err = ParseOVF(f)
	case "ova":
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			if ova, err = ParseOVA(f, st.Size()); err == nil {
				vm = ova.VM
			}
		}
	default:
		return nil, nil, fmt.Errorf("%s: %w", path, ErrNotConfig)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	vm.Config = path
	dir := filepath.Dir(path)
	if ova == nil {
		for i := range vm.Disks {
			vm.Disks[i].Path = resolve(dir, vm.Disks[i].Path)
		}
	}
	if kind == VMware {
		loadVMSD(vm, path)
	}
	findState(vm, opts)
	return vm, ova, nil
}

// resolve makes a configuration's path absolute; Windows separators
// (a .vbox moved from a Windows host) are taken as separators.
func resolve(dir, p string) string {
	if p == "" {
		return p
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// loadVMSD reads NAME.vmsd beside NAME.vmx: its snapshots, and the disks
// they froze (the bases of the current disks' chains).
func loadVMSD(vm *VM, vmx string) {
	p := strings.TrimSuffix(vmx, filepath.Ext(vmx)) + ".vmsd"
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	sd, err := ParseVMSD(f)
	if err != nil {
		return
	}
	vm.Snapshots = sd.Snapshots
	dir := filepath.Dir(vmx)
	have := map[string]bool{}
	for _, d := range vm.Disks {
		have[d.Path] = true
	}
	for _, s := range sd.Snapshots {
		for node, file := range sd.Disks[s.ID] {
			p := resolve(dir, file)
			if have[p] {
				continue
			}
			have[p] = true
			ctl, slot, _ := strings.Cut(node, ":")
			var c, sl *string
			if node != "" {
				c, sl = strp(ctl), strp(strings.TrimLeft(ctl, "abcdefghijklmnopqrstuvwxyz")+":"+slot)
			}
			vm.Disks = append(vm.Disks, Disk{Path: p, Controller: c, Slot: sl, Snapshot: s.ID})
		}
	}
}
