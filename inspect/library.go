package inspect

import (
	"path/filepath"
	"sync"

	"github.com/offvm/offvm/inventory"
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
	// Done is called after each one (from one goroutine at a time).
	Found func(n int)
	Done  func(inf mount.Info)
	// VMDirs are read for VM configurations besides the library's own
	// folders (such as /etc/libvirt/qemu).
	VMDirs []string
}

// LibraryWith is Library over one shard, several images at a time.
func LibraryWith(root string, o LibraryOptions) ([]mount.Info, error) {
	ents, err := library.Walk(root)
	if err != nil {
		return nil, err
	}
	all := make([]string, len(ents))
	for i, e := range ents {
		all[i] = e.Path
	}
	var kept []library.Entry
	for _, e := range ents {
		if o.Shard.Has(root, e.Path) {
			kept = append(kept, e)
		}
	}
	if o.Found != nil {
		o.Found(len(kept))
	}
	parents := parentsOf(o.Cache, all)
	vms := library.ScanVMs(root, o.VMDirs, vmconfig.Options{})
	out := make([]mount.Info, len(kept))
	jobs := max(o.Jobs, 1)
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, e := range kept {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			inf := describeIn(o.Cache, e.Path, vms)
			if abs, err := filepath.Abs(e.Path); err == nil && parents[abs] && inf.Error == nil && vms.SleepReason(e.Path) == "" {
				why := "the parent of another image in the library"
				inf.Writable, inf.ReadOnlyReason = false, &why
			}
			out[i] = inf
			if o.Done != nil {
				mu.Lock()
				o.Done(inf)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// describeIn describes one image of a library. The inventory cache is
// keyed by the image's own files, so a disk that belongs to a VM, or sits
// in an OVA, is always opened: the VM's state lives in files beside it.
func describeIn(c *inventory.Cache, path string, vms *library.VMs) mount.Info {
	_, _, inOVA := library.InOVA(path)
	if _, hasVM := vms.For(path); hasVM || inOVA || library.IsOVA(path) {
		return imageIn(path, vms)
	}
	return ImageCached(c, path)
}
