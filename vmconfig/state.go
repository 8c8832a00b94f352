package vmconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// libvirtSaveMagic starts every file virsh managedsave completes
// (virQEMUSaveHeader); "LibvirtQemudPart" marks one still being written.
var libvirtSaveMagic = []byte("LibvirtQemudSave")

// findState decides the VM's state from the files beside its
// configuration. A saved state counts only when its file exists: that is
// what the hypervisor would resume from. Snapshot memory (.vmsn, a
// snapshot's .sav) never counts.
func findState(vm *VM, opts Options) {
	dir := filepath.Dir(vm.Config)
	switch vm.Kind {
	case VMware:
		vmwareState(vm, dir)
	case VirtualBox:
		vm.State = StateOff
		if vm.StateFile != "" {
			if p := resolve(dir, vm.StateFile); isFile(p) {
				vm.StateFile, vm.State = p, StateSaved
				return
			}
		}
		vm.StateFile = ""
	case Libvirt:
		if vm.State == "" {
			vm.State = StateOff
		}
		dirs := append([]string{dir}, opts.LibvirtSaveDirs...)
		if opts.LibvirtSaveDirs == nil {
			dirs = append(dirs, "/var/lib/libvirt/qemu/save")
		}
		for _, d := range dirs {
			p := filepath.Join(d, vm.Name+".save")
			if hasPrefix(p, libvirtSaveMagic) {
				vm.StateFile, vm.State = p, StateSaved
				return
			}
		}
	}
}

// vmwareState: a .vmss the .vmx names in checkpoint.vmState (or, with
// that key absent, NAME.vmss / NAME-*.vmss beside it) means suspended; a
// NAME.vmx.lck lock folder, or a .vmem memory file with no .vmss, means
// the VM runs.
func vmwareState(vm *VM, dir string) {
	vm.State = StateOff
	base := strings.TrimSuffix(filepath.Base(vm.Config), filepath.Ext(vm.Config))
	named := vm.StateFile
	vm.StateFile = ""
	if named != "" {
		if p := resolve(dir, named); isFile(p) {
			vm.StateFile, vm.State = p, StateSuspended
			return
		}
	}
	vmss, _ := filepath.Glob(filepath.Join(globEscape(dir), globEscape(base)+"*.vmss"))
	for _, p := range vmss {
		if b := strings.TrimSuffix(filepath.Base(p), ".vmss"); b == base || strings.HasPrefix(b, base+"-") {
			vm.StateFile, vm.State = p, StateSuspended
			return
		}
	}
	// Workstation and ESXi lock the .vmx and each open disk with NAME.lck
	locks := []string{vm.Config + ".lck"}
	for _, d := range vm.Disks {
		locks = append(locks, d.Path+".lck")
	}
	for _, lck := range locks {
		if exists(lck) {
			vm.Lock, vm.State = lck, StateRunning
			return
		}
	}
	vmem, _ := filepath.Glob(filepath.Join(globEscape(dir), globEscape(base)+"*.vmem"))
	for _, p := range vmem {
		if b := strings.TrimSuffix(filepath.Base(p), ".vmem"); b == base || strings.HasPrefix(b, base+"-") {
			// a snapshot's memory is NAME-SnapshotN.vmem beside its .vmsn
			if strings.Contains(b, "-Snapshot") {
				continue
			}
			vm.Lock, vm.State = p, StateRunning
			return
		}
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func hasPrefix(p string, magic []byte) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, len(magic))
	n, _ := f.Read(b)
	return n == len(magic) && bytes.Equal(b, magic)
}

// globEscape quotes glob metacharacters in a literal path part.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
