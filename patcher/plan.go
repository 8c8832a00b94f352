package patcher

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/volume"
)

// Change is one thing a patch changes, as --dry-run and --json show it.
type Change struct {
	// Action is create, update, mkdir or delete (files); set,
	// delete-value, create-key or delete-key (registry); record; stage,
	// update or note (update packages, updates.go).
	Action string `json:"action"`
	Path   string `json:"path"`
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	s := fmt.Sprintf("%-12s %s", c.Action, c.Path)
	if c.Detail != "" {
		s += " " + c.Detail
	}
	return s
}

// Plan is what applying a bundle to one image changes.
type Plan struct {
	Changes []Change
	// FilesUnchanged counts bundle files whose size and content already
	// match; ValuesUnchanged counts registry operations with nothing to do.
	FilesUnchanged  int
	ValuesUnchanged int
	steps           []step
}

// step is a file change to make (registry changes are made in memory
// while planning and written by the commit).
type step struct {
	c    Change
	v    *vol
	path []string
	src  string
	do   func(v *vol, path []string, src string) error
}

// Count says how many files and registry values the plan changes.
func (p *Plan) Count() (files, values int) {
	for _, c := range p.Changes {
		switch c.Action {
		case "create", "update", "delete", "mkdir":
			files++
		case "record", "install", "upgrade", "already applied": // packages (debs.go)
		default:
			values++
		}
	}
	return
}

// target is one image as the patch reaches it: through package mount
// (an image file), or through a mounted offvm tree (mounted.go).
type target struct {
	os     *inspect.OS
	drives map[string]string
	dry    bool
	vols   map[string]*vol // by "p3"
	// openVol reaches partition n's file system.
	openVol func(n int) (*vol, error)
	// reg is the Windows registry (nil for other guests).
	reg regView
}

// volume finds the file system a bundle path goes to: a drive letter
// through the guest's own mapping (C: falls back to the system partition
// when MountedDevices does not name it), or a partition by number.
func (t *target) volume(tg Target) (*vol, error) {
	part := ""
	if tg.Drive != "" {
		part = t.drives[tg.Drive]
		if part == "" && tg.Drive == "C" && t.family() == "windows" {
			part = t.os.SystemPartition
		}
		if part == "" {
			return nil, fmt.Errorf("drive %s: is not mapped to a partition in this image", tg.Drive)
		}
	} else {
		part = "p" + strconv.Itoa(tg.Part)
	}
	if v, ok := t.vols[part]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(part, "p"))
	if err != nil {
		return nil, fmt.Errorf("partition %q: %w", part, err)
	}
	v, err := t.openVol(n)
	if err != nil {
		return nil, err
	}
	t.vols[part] = v
	return v, nil
}

// imageVolume opens partition n of an image through package mount.
func imageVolume(im *mount.Image, dry bool) func(n int) (*vol, error) {
	return func(n int) (*vol, error) {
		mv, err := im.Volume(n)
		if err != nil {
			return nil, err
		}
		if mv.FS == nil {
			why := "no file system offvm can read"
			if mv.Err != nil {
				why = mv.Err.Error()
			}
			return nil, fmt.Errorf("p%d: %s", n, why)
		}
		v := &vol{name: "p" + strconv.Itoa(n), fs: mv.FS, ro: mv.ReadOnly}
		if w, ok := mv.FS.(volume.Writer); ok && mv.ReadOnly == "" && !dry {
			v.w = w
		}
		if v.w == nil && v.ro == "" {
			v.ro = "opened read-only"
		}
		if reg, rv, err := im.Registry(); err == nil && rv == mv {
			v.guard = reg.FileWrite
		}
		return v, nil
	}
}

// planFiles compares the bundle's files and deletes with the image.
func (t *target) planFiles(b *Bundle, p *Plan) error {
	for _, d := range b.Deletes {
		v, err := t.volume(d)
		if err != nil {
			return fmt.Errorf("delete %s: %w", d, err)
		}
		a, err := lookup(v.fs, d.Path)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", d, err)
		}
		detail := ""
		if a.Mode.IsDir() {
			detail = "(directory, with everything below it)"
		}
		p.add(Change{Action: "delete", Path: d.String(), Detail: detail}, step{v: v, path: d.Path, do: func(v *vol, path []string, _ string) error { return removeTree(v, path) }})
	}
	planned := map[string]bool{} // directories the plan creates
	for _, f := range b.Files {
		v, err := t.volume(f.Target)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Target, err)
		}
		if err := t.planFile(v, f, p, planned); err != nil {
			return fmt.Errorf("%s: %w", f.Target, err)
		}
	}
	return nil
}

func (t *target) planFile(v *vol, f File, p *Plan, planned map[string]bool) error {
	parent := strings.ToLower(v.name + join(f.Path[:len(f.Path)-1]))
	var a volume.Attr
	err := errNotLooked
	if !planned[parent] { // below a new directory nothing exists yet
		a, err = lookup(v.fs, f.Path)
	}
	if err != nil && err != errNotLooked && !isNotExist(err) {
		return err
	}
	absent := err != nil
	switch {
	case f.IsDir && absent:
		planned[strings.ToLower(v.name+join(f.Path))] = true
		p.add(Change{Action: "mkdir", Path: f.Target.String()}, step{v: v, path: f.Path, do: func(v *vol, path []string, _ string) error { return makeDir(v, path) }})
	case f.IsDir && !a.Mode.IsDir():
		return fmt.Errorf("the bundle has a directory where the image has a file or a link")
	case f.IsDir:
	case absent:
		p.add(Change{Action: "create", Path: f.Target.String(), Detail: fmt.Sprintf("(%d bytes)", f.Size)}, step{v: v, path: f.Path, src: f.Src, do: writeFile})
	case !a.Mode.IsRegular():
		return fmt.Errorf("the image has a directory or a link where the bundle has a file")
	default:
		same := a.Size == f.Size
		if same {
			if same, err = sameContent(v.fs, a.Ino, f.Src); err != nil {
				return err
			}
		}
		if same {
			p.FilesUnchanged++
			return nil
		}
		p.add(Change{Action: "update", Path: f.Target.String(), Detail: fmt.Sprintf("(%d bytes, was %d)", f.Size, a.Size)}, step{v: v, path: f.Path, src: f.Src, do: writeFile})
	}
	return nil
}

var errNotLooked = fmt.Errorf("not looked up")

func (p *Plan) add(c Change, s step) {
	s.c = c
	p.Changes = append(p.Changes, c)
	p.steps = append(p.steps, s)
}

// run makes the planned file changes, in order.
func (p *Plan) run() error {
	for _, s := range p.steps {
		if err := s.do(s.v, s.path, s.src); err != nil {
			return fmt.Errorf("%s %s: %w", s.c.Action, s.c.Path, err)
		}
	}
	return nil
}
