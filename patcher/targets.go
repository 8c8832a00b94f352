package patcher

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/offvm/offvm/internal/workers"
	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/vdisk/detect"
	"github.com/offvm/offvm/vmconfig"
)

// Image is one image a TARGET names.
type Image struct {
	Path string
	// Mount is the mounted tree's directory of this image when the TARGET
	// was inside an offvm mount ("" otherwise).
	Mount string
	// Err is why the TARGET could not be read (Path is then the TARGET).
	Err error
	// ReadOnly says why the image must not be written ("" when it may):
	// another image of its library uses it as a parent.
	ReadOnly string
}

// parentReason is what offvm says of an image other images build on.
const parentReason = "the parent of another image in the library"

// Expand turns TARGET arguments into images: an image file; a library
// directory (every image in it, recursively); or an image's directory in
// a mounted offvm tree (MNT/windows/web01.vhdx, mapped back to the image
// file through its info.json), or a folder of such a tree.
func Expand(targets []string) []Image {
	var out []Image
	seen := map[string]bool{}
	for _, arg := range targets {
		st, err := os.Stat(arg)
		var imgs []Image
		switch {
		case err != nil:
			imgs = []Image{{Path: arg, Err: err}}
		case !st.IsDir() && library.IsOVA(arg):
			imgs = []Image{{Path: arg, Err: library.PackageError(arg)}}
		case !st.IsDir():
			imgs = []Image{{Path: arg}}
			if parentsIn(filepath.Dir(arg))[abs(arg)] {
				imgs[0].ReadOnly = parentReason
			}
			if r := library.VMsOf(arg).SleepReason(arg); r != "" {
				imgs[0].ReadOnly = r // its VM sleeps on it
			}
		default:
			imgs = expandDir(arg)
		}
		// an image named twice (a library and one of its files) is
		// patched once
		for _, img := range imgs {
			key := abs(img.Path)
			if img.Err == nil && seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, img)
		}
	}
	return out
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// parentsIn finds the images of one directory (not below it) that
// another image there uses as its parent: writing one would corrupt its
// children.
func parentsIn(dir string) map[string]bool {
	out := map[string]bool{}
	ents, err := library.List(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.IsDir {
			continue
		}
		d, err := detect.Open(e.Path, detect.Options{})
		if err != nil {
			continue
		}
		if p := d.Info().Parent; p != "" {
			out[abs(p)] = true
		}
		d.Close()
	}
	return out
}

func expandDir(dir string) []Image {
	if p, ok := mountedImage(dir); ok {
		return []Image{{Path: p, Mount: dir}}
	}
	// A folder of a mounted tree: its images are directories (the raw
	// "disk" files inside them must not be taken for images).
	if onFUSE(dir) {
		if out := mountedImages(dir, 0); len(out) > 0 {
			return out
		}
	}
	ents, err := library.Walk(dir)
	if err != nil {
		return []Image{{Path: dir, Err: err}}
	}
	parents := library.Parents(dir)
	vms := library.ScanVMs(dir, nil, vmconfig.Options{})
	var out []Image
	for _, e := range ents {
		img := Image{Path: e.Path}
		if parents[abs(e.Path)] {
			img.ReadOnly = parentReason
		}
		if r := vms.SleepReason(e.Path); r != "" {
			img.ReadOnly = r // its VM sleeps on it
		}
		if _, _, ok := library.InOVA(e.Path); ok {
			img.Err = fmt.Errorf("%s: %s", e.Path, library.OVAReason)
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return []Image{{Path: dir, Err: fmt.Errorf("%s holds no disk images", dir)}}
	}
	return out
}

// fuseMagic is FUSE_SUPER_MAGIC, statfs's f_type of a FUSE mount.
const fuseMagic = 0x65735546

func onFUSE(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == fuseMagic
}

// mountedImage reads the image file's path from an image directory of a
// mounted tree (its info.json).
func mountedImage(dir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		return "", false
	}
	var inf struct {
		Path string `json:"path"`
	}
	if json.Unmarshal(b, &inf) != nil || inf.Path == "" {
		return "", false
	}
	return inf.Path, true
}

// mountedImages finds image directories below a folder of a mounted tree,
// never descending into an image (its volumes can be large).
func mountedImages(dir string, depth int) []Image {
	if depth > 32 {
		return nil
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []Image
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if img, ok := mountedImage(p); ok {
			out = append(out, Image{Path: img, Mount: p})
			continue
		}
		out = append(out, mountedImages(p, depth+1)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Run applies the bundle (or, with status, reports on it) to every image,
// jobs at a time. Each image is independent: one failure never costs
// another. Results come in the order of imgs.
func Run(b *Bundle, imgs []Image, jobs int, status bool, opts Options) []Result {
	out := make([]Result, len(imgs))
	workers.Each(len(imgs), jobs, func(i int) { out[i] = one(b, imgs[i], status, opts) })
	return out
}

func one(b *Bundle, img Image, status bool, opts Options) Result {
	switch {
	case img.Err != nil:
		return failed(img.Path, img.Err)
	case img.Mount != "" && !status && !opts.DryRun:
		return failed(img.Path, mountedRefusal(img, b))
	case img.Mount != "":
		return applyMounted(img, b, status, opts)
	case status:
		return Status(img.Path, b)
	}
	opts.ReadOnlyReason = img.ReadOnly
	return Apply(img.Path, b, opts)
}

// Line is the one-line report of a result.
func (r Result) Line() string {
	s := r.Image + ": " + r.Status
	switch {
	case r.Reason != "":
		s += ": " + r.Reason
	case r.Status == Applied && r.When != "":
		s += " (" + r.When + ")"
	case r.Status == WouldApply:
		s += fmt.Sprintf(": %d changes, %d files unchanged, %d registry values unchanged", len(r.Changes), r.FilesUnchanged, r.ValuesUnchanged)
	}
	if r.Status == Applied || r.Status == WouldApply {
		// what the user should know of the image (a reboot pending), on
		// the line itself: an apply prints no changes
		for _, c := range r.Changes {
			if c.Action == "note" {
				s += "; " + strings.TrimSpace(c.Path+" "+c.Detail)
			}
		}
	}
	return s
}
