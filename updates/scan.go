package updates

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/offvm/offvm/internal/workers"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/patcher"
)

// ImageScan is what scan says of one image.
type ImageScan struct {
	Image    string    `json:"image"`
	Verdicts []Verdict `json:"updates"`
	// Pending says why the image has a reboot pending (none: empty).
	Pending []string `json:"reboot_pending"`
	Error   string   `json:"error,omitempty"`
}

// Scan decides every package for every image, jobs images at a time,
// opening each read-only. Results come in the order of imgs.
func Scan(pkgs []*Package, imgs []patcher.Image, jobs int) []ImageScan {
	out := make([]ImageScan, len(imgs))
	workers.Each(len(imgs), jobs, func(i int) { out[i] = scanOne(pkgs, imgs[i]) })
	return out
}

func scanOne(pkgs []*Package, img patcher.Image) (res ImageScan) {
	res = ImageScan{Image: img.Path, Pending: []string{}}
	defer recoverInto(img.Path, &res.Error)
	if img.Err != nil {
		res.Error = img.Err.Error()
		return res
	}
	im, err := mount.Open(img.Path, mount.Options{ReadOnly: true})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer im.Close()
	f, err := ReadFacts(im)
	if err != nil {
		res.Error = fmt.Sprintf("%s: %v", img.Path, err)
		return res
	}
	res.Verdicts = DecideAll(pkgs, f)
	res.Pending = append(res.Pending, f.Pending...)
	return res
}

// DecideAll decides each package, then the newest of several versions of
// one package given together supersedes the others.
func DecideAll(pkgs []*Package, f Facts) []Verdict {
	out := make([]Verdict, 0, len(pkgs))
	for _, p := range pkgs {
		out = append(out, Decide(p, f))
	}
	supersede(pkgs, out)
	return out
}

// recoverInto turns a panic in an engine into this image's error: one
// image never costs the others.
func recoverInto(image string, msg *string) {
	if r := recover(); r != nil {
		slog.Error("updates: panic", "image", image, "panic", r, "stack", string(debug.Stack()))
		*msg = fmt.Sprintf("%s: internal error: %v", image, r)
	}
}

// OpenPackages reads every package, refusing all if one is damaged (so
// no image is touched for a half-readable set).
func OpenPackages(paths []string) ([]*Package, error) {
	var out []*Package
	seen := map[string]string{}
	for _, p := range paths {
		pk, err := OpenPackage(p)
		if err != nil {
			return nil, err
		}
		key := pk.KB + "/" + pk.Identity.Arch
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s: %s is also in %s; give one package per KB and architecture", p, pk.KB, other)
		}
		seen[key] = p
		out = append(out, pk)
	}
	return out, nil
}
