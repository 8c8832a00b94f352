package library

import (
	"log/slog"
	"path/filepath"

	"github.com/offvm/offvm/vdisk/detect"
)

// Parents returns the absolute paths of every image that another image in
// the library uses as its parent or backing file. Writing a parent would
// corrupt its children, so such images are opened read-only.
func Parents(root string) map[string]bool {
	out := map[string]bool{}
	ents, err := Walk(root)
	if err != nil {
		return out
	}
	for _, e := range ents {
		d, err := detect.Open(e.Path, detect.Options{})
		if err != nil {
			slog.Debug("parent scan: cannot open", "image", e.Path, "err", err)
			continue
		}
		if p := d.Info().Parent; p != "" {
			if abs, err := filepath.Abs(p); err == nil {
				out[abs] = true
			}
		}
		d.Close()
	}
	return out
}

// ParentReason says why the image at path must not be written when another
// image in its own folder uses it as a parent ("" when none does). For a
// single image named on the command line, its folder is the library.
func ParentReason(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	if Parents(filepath.Dir(abs))[abs] {
		return "the parent of another image in its folder"
	}
	return ""
}
