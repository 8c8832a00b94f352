package inspect

import (
	"path/filepath"

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
	ents, err := library.Walk(root)
	if err != nil {
		return nil, err
	}
	parents := library.Parents(root)
	out := make([]mount.Info, 0, len(ents))
	for _, e := range ents {
		inf := Image(e.Path)
		if abs, err := filepath.Abs(e.Path); err == nil && parents[abs] && inf.Error == nil {
			why := "the parent of another image in the library"
			inf.Writable, inf.ReadOnlyReason = false, &why
		}
		out = append(out, inf)
	}
	return out, nil
}
