package fs

import (
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/vmconfig"
)

// vms returns what the library's VM configurations say, read once on
// first need (like the parents scan).
func (t *Tree) vms() *library.VMs {
	t.vmsOnce.Do(func() { t.vmIndex = library.ScanVMs(t.opts.Library, t.opts.VMDirs, vmconfig.Options{}) })
	return t.vmIndex
}

// vmOptions sets what an image's VM and place decide: the VM for its
// info.json; read-only when the VM sleeps or runs (its memory holds the
// guest's view of this disk) or when the disk lives inside an OVA.
func (t *Tree) vmOptions(path string, opts *mount.Options) {
	x := t.vms()
	if vi, ok := x.For(path); ok {
		opts.VM = vi
	}
	if _, _, ok := library.InOVA(path); ok {
		opts.OpenFile, opts.ReadOnlyReason = library.OVAOpenFile, library.OVAReason
		return
	}
	if r := x.SleepReason(path); r != "" && !opts.ReadOnly {
		opts.ReadOnlyReason = r
	}
}

// vmOf is the image's VM for info.json, nil when none names it.
func (t *Tree) vmOf(path string) any {
	if vi, ok := t.vms().For(path); ok {
		return vi
	}
	return nil
}
