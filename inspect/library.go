package inspect

import (
	"path/filepath"

	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/vmconfig"
)

// Image opens one image read-only and describes it; an image that cannot
// be opened is described by its error. The VM configurations of its
// folder say which VM it belongs to.
func Image(path string) mount.Info {
	return imageIn(path, library.VMsOf(path))
}

// imageIn describes one image with the library's VMs: the VM it belongs
// to, and read-only when that VM sleeps or the disk is inside an OVA.
func imageIn(path string, vms *library.VMs) mount.Info {
	opts := mount.Options{ReadOnly: true}
	_, _, inOVA := library.InOVA(path)
	if inOVA {
		opts.OpenFile = library.OVAOpenFile
	}
	vi, hasVM := vms.For(path)
	if hasVM {
		opts.VM = vi
	}
	err := library.OVAError(path)
	if err == nil && library.IsOVA(path) {
		err = library.PackageError(path) // a tar is no disk: never open it raw
	}
	var im *mount.Image
	if err == nil {
		im, err = mount.Open(path, opts)
	}
	if err != nil {
		inf := mount.ErrorInfo(path, err)
		if hasVM {
			inf.VM = vi
		}
		return inf
	}
	defer im.Close()
	inf := Describe(im)
	inf.Writable, inf.ReadOnlyReason = false, nil
	why := vms.SleepReason(path)
	if inOVA {
		why = library.OVAReason
	}
	if why == "" {
		if ok, w := im.WouldBeWritable(); ok {
			inf.Writable = true
		} else {
			why = w
		}
	}
	if why != "" {
		inf.ReadOnlyReason = &why
	}
	return inf
}

// Library describes every image of a library (a directory, or one image
// file), in path order. An image that is another one's parent, or whose
// VM sleeps, is shown as read-only, as a mount would open it.
func Library(root string) ([]mount.Info, error) {
	return LibraryWith(root, nil)
}

// LibraryWith is Library that also reads the VM configurations in
// vmDirs (such as /etc/libvirt/qemu).
func LibraryWith(root string, vmDirs []string) ([]mount.Info, error) {
	ents, err := library.Walk(root)
	if err != nil {
		return nil, err
	}
	parents := library.Parents(root)
	vms := library.ScanVMs(root, vmDirs, vmconfig.Options{})
	out := make([]mount.Info, 0, len(ents))
	for _, e := range ents {
		inf := imageIn(e.Path, vms)
		if abs, err := filepath.Abs(e.Path); err == nil && parents[abs] && inf.Error == nil && vms.SleepReason(e.Path) == "" {
			why := "the parent of another image in the library"
			inf.Writable, inf.ReadOnlyReason = false, &why
		}
		out = append(out, inf)
	}
	return out, nil
}
