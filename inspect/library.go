package inspect

import (
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/offvm/offvm/internal/workers"
	"github.com/offvm/offvm/inventory"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/vmconfig"
)

// Image opens one image read-only and describes it; an image that cannot
// be opened is described by its error. The VM configurations of its
// folder say which VM it belongs to.
func Image(path string) mount.Info {
	return imageIn(path, "", library.VMsOf(path))
}

// imageIn describes one image with the library's VMs: the VM it belongs
// to, and read-only when that VM sleeps or the disk is inside an OVA.
// format is what library.Walk found the file to be ("" when unknown): an
// image of a known container format is no OVA and need not be probed
// again (each probe opens the file).
func imageIn(path, format string, vms *library.VMs) mount.Info {
	opts := mount.Options{ReadOnly: true}
	_, _, inOVA := library.InOVA(path)
	if inOVA {
		opts.OpenFile = library.OVAOpenFile
	}
	vi, hasVM := vms.For(path)
	if hasVM {
		opts.VM = vi
	}
	var err error
	if format == "" || format == "ova" {
		err = library.OVAError(path)
		if err == nil && library.IsOVA(path) {
			err = library.PackageError(path) // a tar is no disk: never open it raw
		}
	} else {
		opts.Format = format
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
	return LibraryWith(root, LibraryOptions{})
}

// LibraryOptions tune LibraryWith.
type LibraryOptions struct {
	// Jobs images are opened at once (each image is independent); < 1 is 1.
	Jobs int
	// Shard keeps only the images of one shard (the zero value keeps all).
	Shard library.Shard
	// Cache, when set, gives the descriptions of unchanged images and
	// keeps those of the others (see ImageCached).
	Cache *inventory.Cache
	// Found, when set, is told how many images will be described, and
	// Done is called after each one (from one goroutine at a time; an
	// image found to be another's parent is made read-only afterwards).
	Found func(n int)
	Done  func(inf mount.Info)
	// VMDirs are read for VM configurations besides the library's own
	// folders (such as /etc/libvirt/qemu).
	VMDirs []string
}

// LibraryWith is Library over one shard, several images at a time. An
// image is read once: whether it is another's parent comes from the
// descriptions themselves (the images of other shards from the cache, or
// their headers).
func LibraryWith(root string, o LibraryOptions) ([]mount.Info, error) {
	ents, err := library.Walk(root)
	if err != nil {
		return nil, err
	}
	all := make([]string, len(ents))
	var kept []library.Entry
	for i, e := range ents {
		all[i] = e.Path
		if o.Shard.Has(root, e.Path) {
			kept = append(kept, e)
		}
	}
	if o.Found != nil {
		o.Found(len(kept))
	}
	vms := library.ScanVMsBeside(root, o.VMDirs, vmconfig.Options{}, ents)
	// with no VM configuration anywhere (nor a broken one), no disk has a
	// VM or sleeps: the per-image questions, each a few path look-ups,
	// need not be asked
	noVMs := len(vms.VMs) == 0 && len(vms.Problems) == 0
	out := make([]mount.Info, len(kept))
	sleeps := make([]bool, len(kept))
	var mu sync.Mutex
	workers.Each(len(kept), o.Jobs, func(i int) {
		e := kept[i]
		out[i] = describeIn(o.Cache, e, vms, noVMs)
		sleeps[i] = !noVMs && vms.SleepReason(e.Path) != ""
		if o.Done != nil {
			mu.Lock()
			o.Done(out[i])
			mu.Unlock()
		}
	})
	described := make(map[string]mount.Info, len(kept))
	for i, e := range kept {
		described[e.Path] = out[i]
	}
	parents := parentsOf(o.Cache, all, described)
	for i, e := range kept {
		inf := &out[i]
		if abs, err := filepath.Abs(e.Path); err == nil && parents[abs] && inf.Error == nil && !sleeps[i] {
			why := "the parent of another image in the library"
			inf.Writable, inf.ReadOnlyReason = false, &why
		}
	}
	if err := o.Cache.Flush(); err != nil {
		slog.Warn("inventory cache not written", "err", err)
	}
	return out, nil
}

// describeIn describes one image of a library. The inventory cache is
// keyed by the image's own files, so a disk that belongs to a VM, or sits
// in an OVA, is always opened: the VM's state lives in files beside it.
func describeIn(c *inventory.Cache, e library.Entry, vms *library.VMs, noVMs bool) mount.Info {
	if e.Format == "ova" {
		return imageIn(e.Path, e.Format, vms)
	}
	if _, _, inOVA := library.InOVA(e.Path); inOVA {
		return imageIn(e.Path, e.Format, vms)
	}
	if !noVMs {
		if _, hasVM := vms.For(e.Path); hasVM {
			return imageIn(e.Path, e.Format, vms)
		}
	}
	return throughCache(c, e.Path, func() mount.Info { return imageIn(e.Path, e.Format, vms) })
}
