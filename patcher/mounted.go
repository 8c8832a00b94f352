package patcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/registry/regtext"
	"github.com/offvm/offvm/registryfs"
)

// An image inside a mounted offvm tree is locked by the mount's daemon, so
// patch status and --dry-run read it through the tree itself (MNT/.../pN
// and MNT/.../registry, CONTRACT.md "The registry as files"). Applying
// through the tree is refused: the daemon would stage each write in the
// image's overlay, but nothing there makes one bundle's writes one unit,
// so a failure or a kill of offvm half-way would leave part of the bundle
// among the mount's pending changes, for the next unmount to commit. A
// bundle lands whole or not at all (CONTRACT.md), so it is applied to the
// image file once the tree is unmounted.

// mountedRefusal says why a bundle is not applied through the mount, and
// what to do instead.
func mountedRefusal(img Image, b *Bundle) error {
	what := "a bundle"
	switch {
	case len(b.Debs) > 0:
		what = "a bundle with packages (debs/)"
	case len(b.Updates) > 0:
		what = "a bundle with update packages (updates/)"
	}
	return fmt.Errorf("%s is applied to the image file as one transaction, all of it or nothing, which writing through the mount at %s cannot give: "+
		"run offvm unmount %s (it commits the mount's own changes), then offvm patch apply %s %s",
		what, img.Mount, MountRoot(img.Mount), b.Dir, img.Path)
}

// mountInfo is what the patcher reads of a mounted image's info.json.
type mountInfo struct {
	Path           string            `json:"path"`
	Writable       bool              `json:"writable"`
	ReadOnlyReason *string           `json:"read_only_reason"`
	Drives         map[string]string `json:"drives"`
	OS             *inspect.OS       `json:"os"`
	Error          *string           `json:"error"`
}

// applyMounted reports on the bundle (status, or what a dry run would
// change) through the image's directory of a mounted tree; it never
// writes.
func applyMounted(img Image, b *Bundle, status bool, opts Options) (res Result) {
	defer recoverTo(img.Path, &res)
	raw, err := os.ReadFile(filepath.Join(img.Mount, "info.json"))
	if err != nil {
		return failed(img.Path, err)
	}
	var inf mountInfo
	if err := json.Unmarshal(raw, &inf); err != nil {
		return failed(img.Path, fmt.Errorf("%s/info.json: %w", img.Mount, err))
	}
	if inf.Error != nil {
		return failed(img.Path, fmt.Errorf("%s", *inf.Error))
	}
	if !status && !opts.DryRun {
		return failed(img.Path, mountedRefusal(img, b)) // never reached from Run; kept for any other caller
	}
	t := &target{os: inf.OS, drives: inf.Drives, dry: true, vols: map[string]*vol{}}
	t.openVol = func(n int) (*vol, error) {
		dir := filepath.Join(img.Mount, fmt.Sprintf("p%d", n))
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("p%d: not in the mounted tree (no file system offvm can read)", n)
		}
		return &vol{name: fmt.Sprintf("p%d", n), fs: newHostFS(dir), ro: "read through the mount"}, nil
	}
	tr := &treeReg{dir: filepath.Join(img.Mount, "registry")}
	if st, err := os.Stat(tr.dir); err == nil && st.IsDir() {
		t.reg = tr
	}
	res = mountedRun(img, t, b, status)
	if !status {
		res.Mount = img.Mount
	}
	return res
}

func mountedRun(img Image, t *target, b *Bundle, status bool) Result {
	_, res, done := settle(img.Path, t, b)
	if status {
		if !done {
			res.Status = NotApplied
		} else if res.Status == AlreadyApplied {
			res.Status = Applied
		}
		return res
	}
	if done {
		return res
	}
	if len(b.Updates) > 0 {
		// the stager decides on an opened image, which the daemon holds
		return failed(img.Path, fmt.Errorf("what update packages (updates/) would stage is decided on the image file: run offvm unmount %s, then offvm patch apply --dry-run %s %s", MountRoot(img.Mount), b.Dir, img.Path))
	}
	p, err := t.plan(b)
	if err != nil {
		return failed(img.Path, err)
	}
	res.Changes, res.FilesUnchanged, res.ValuesUnchanged = p.Changes, p.FilesUnchanged, p.ValuesUnchanged
	res.Status = WouldApply
	res.Changes = append(res.Changes, t.recordChange(b.ID))
	return res
}

// treeReg is the registry/ directory of a mounted image, read only:
// keys are directories, values are files with their type in
// user.reg.type.
type treeReg struct {
	dir string
}

const typeXattr = "user.reg.type"

// keyDir maps HKLM\SOFTWARE\Foo (or HKEY_LOCAL_MACHINE\...) to the
// directory of the key.
func (r *treeReg) keyDir(key string) (string, string, error) {
	parts := strings.FieldsFunc(key, func(c rune) bool { return c == '\\' })
	if len(parts) < 2 {
		return "", "", fmt.Errorf("registry path %q: name a hive, as HKLM\\SOFTWARE\\...: %w", key, syscall.EINVAL)
	}
	root := map[string]string{"HKLM": "HKLM", "HKEY_LOCAL_MACHINE": "HKLM", "HKU": "HKU", "HKEY_USERS": "HKU"}[strings.ToUpper(parts[0])]
	if root == "" {
		return "", "", fmt.Errorf("registry path %q: offvm writes HKLM and HKU: %w", key, syscall.EINVAL)
	}
	elems := []string{r.dir, root}
	for _, p := range parts[1:] {
		elems = append(elems, registryfs.EncodeName(p, false))
	}
	if st, err := os.Stat(filepath.Join(elems[:3]...)); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("registry path %q: no hive %s\\%s in this image: %w", key, root, parts[1], syscall.ENOENT)
	}
	return filepath.Join(elems...), root + `\` + strings.Join(parts[1:], `\`), nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// value reads a value's type and content as the tree shows them.
func value(p string) (string, []byte, bool, error) {
	content, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	typ := make([]byte, 64)
	n, err := unix.Getxattr(p, typeXattr, typ)
	if err != nil {
		return "", nil, false, fmt.Errorf("%s: reading %s: %w", p, typeXattr, err)
	}
	return string(typ[:n]), content, true, nil
}

// do says what op would change; the tree is only read (a dry run).
func (r *treeReg) do(op RegOp) (Change, bool, error) {
	dir, shown, err := r.keyDir(op.Key)
	if err != nil {
		return Change{}, false, err
	}
	exists := isDir(dir)
	var c Change
	switch op.Kind {
	case regtext.CreateKey:
		if exists {
			return c, false, nil
		}
		c = Change{Action: "create-key", Path: shown}
		return c, true, nil
	case regtext.DeleteKey:
		if !exists {
			return c, false, nil
		}
		c = Change{Action: "delete-key", Path: shown}
		return c, true, nil
	}
	file := filepath.Join(dir, registryfs.EncodeName(op.Name, true))
	typ, content, found := "", []byte(nil), false
	if exists {
		if typ, content, found, err = value(file); err != nil {
			return c, false, err
		}
	}
	if op.Kind == regtext.DeleteValue {
		if !found {
			return c, false, nil
		}
		c = Change{Action: "delete-value", Path: shown + valuePath(op.Name)}
		return c, true, nil
	}
	c = Change{Action: "set", Path: shown + valuePath(op.Name), Detail: "= " + showValue(op.Type, op.Data)}
	if found && typ == registryfs.TypeName(op.Type) && bytes.Equal(content, registryfs.Render(op.Type, op.Data)) {
		return c, false, nil
	}
	return c, true, nil
}

func (r *treeReg) readRecord(id string) (string, bool, error) {
	dir, _, err := r.keyDir(`HKLM\SOFTWARE\` + PatchesKey + `\` + id)
	if err != nil {
		return "", false, err
	}
	if !isDir(dir) {
		return "", false, nil
	}
	b, _ := os.ReadFile(filepath.Join(dir, "Applied"))
	return strings.TrimSpace(string(b)), true, nil
}

func (r *treeReg) setValues(key string, _ []regValue) error {
	return fmt.Errorf("HKLM\\SOFTWARE\\%s: the registry of a mounted tree is only read by patch: %w", key, syscall.EROFS)
}
