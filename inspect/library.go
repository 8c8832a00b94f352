package inspect

import (
	"path/filepath"
	"sync"

	"github.com/offvm/offvm/inventory"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
)

// Image opens one image read-only and describes it; an image that cannot
// be opened is described by its error.
func Image(path string) mount.Info {
	im, err := mount.Open(path, mount.Options{ReadOnly: true})
	if err != nil {
		return mount.ErrorInfo(path, err)
	}
	defer im.Close()
	inf := Describe(im)
	inf.Writable, inf.ReadOnlyReason = false, nil
	if ok, why := im.WouldBeWritable(); ok {
		inf.Writable = true
	} else {
		inf.ReadOnlyReason = &why
	}
	return inf
}

// Library describes every image of a library (a directory, or one image
// file), in path order. An image that is another one's parent is shown as
// read-only, as a mount would open it.
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
			inf := ImageCached(o.Cache, e.Path)
			if abs, err := filepath.Abs(e.Path); err == nil && parents[abs] && inf.Error == nil {
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
