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
	"time"

	"golang.org/x/sys/unix"

	"github.com/offvm/offvm/inspect"
	"github.com/offvm/offvm/registryfs"
	"github.com/offvm/offvm/regtext"
)

// An image inside a mounted offvm tree is locked by the mount's daemon, so
// the patch goes through the tree itself, with ordinary file operations on
// MNT/.../pN and MNT/.../registry (CONTRACT.md, "The registry as files").
// The daemon stages every change in the image's overlay and commits them
// all at unmount, as one transaction with whatever else the mount changed;
// `offvm unmount --discard` drops them. What this path cannot give is
// all-or-nothing per patch: a failure after the first write leaves the
// earlier writes pending in the mount (the result says so).

// mountInfo is what the patcher reads of a mounted image's info.json.
type mountInfo struct {
	Path           string            `json:"path"`
	Writable       bool              `json:"writable"`
	ReadOnlyReason *string           `json:"read_only_reason"`
	Drives         map[string]string `json:"drives"`
	OS             *inspect.OS       `json:"os"`
	Error          *string           `json:"error"`
}

// applyMounted applies (or, with status, reports on) the bundle through
// the image's directory dir of a mounted tree.
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
	dry := status || opts.DryRun
	t := &target{os: inf.OS, drives: inf.Drives, dry: dry, vols: map[string]*vol{}}
	var fss []*hostfs
	t.openVol = func(n int) (*vol, error) {
		dir := filepath.Join(img.Mount, fmt.Sprintf("p%d", n))
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("p%d: not in the mounted tree (no file system offvm can read)", n)
		}
		h := newHostFS(dir)
		fss = append(fss, h)
		v := &vol{name: fmt.Sprintf("p%d", n), fs: h}
		if !dry {
			v.w = h
		}
		v.ro = "opened read-only"
		return v, nil
	}
	tr := &treeReg{dir: filepath.Join(img.Mount, "registry"), dry: dry}
	if st, err := os.Stat(tr.dir); err == nil && st.IsDir() {
		t.reg = tr
	}
	res = mountedRun(img, t, b, status, opts, inf)
	if !status {
		res.Mount = img.Mount
	}
	if res.Failed() && (tr.wrote || anyWrote(fss)) {
		res.Reason += fmt.Sprintf("; the changes made before the failure are pending in the mount at %s (offvm unmount --discard drops them)", img.Mount)
	}
	return res
}

func anyWrote(fss []*hostfs) bool {
	for _, h := range fss {
		if h.wrote {
			return true
		}
	}
	return false
}

func mountedRun(img Image, t *target, b *Bundle, status bool, opts Options, inf mountInfo) Result {
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
	if !inf.Writable && !opts.DryRun {
		return failed(img.Path, fmt.Errorf("cannot write through the mount at %s: %s", img.Mount, deref(inf.ReadOnlyReason)))
	}
	p, err := t.plan(b)
	if err != nil {
		return failed(img.Path, err)
	}
	res.Changes, res.FilesUnchanged, res.ValuesUnchanged = p.Changes, p.FilesUnchanged, p.ValuesUnchanged
	if opts.DryRun {
		res.Status = WouldApply
		res.Changes = append(res.Changes, t.recordChange(b.ID))
		return res
	}
	if err := p.run(); err != nil {
		return failed(img.Path, err)
	}
	when := time.Now()
	if opts.Now != nil {
		when = opts.Now()
	}
	if err := t.writeRecord(b, p, when); err != nil {
		return failed(img.Path, err)
	}
	res.Status, res.When = Applied, when.UTC().Format(time.RFC3339)
	return res
}

// treeReg is the registry/ directory of a mounted image: keys are
// directories, values are files with their type in user.reg.type.
type treeReg struct {
	dir   string
	dry   bool
	wrote bool
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
		return c, true, r.apply(func() error { return os.MkdirAll(dir, 0o755) })
	case regtext.DeleteKey:
		if !exists {
			return c, false, nil
		}
		c = Change{Action: "delete-key", Path: shown}
		return c, true, r.apply(func() error { return os.RemoveAll(dir) })
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
		return c, true, r.apply(func() error { return os.Remove(file) })
	}
	c = Change{Action: "set", Path: shown + valuePath(op.Name), Detail: "= " + showValue(op.Type, op.Data)}
	if found && typ == registryfs.TypeName(op.Type) && bytes.Equal(content, registryfs.Render(op.Type, op.Data)) {
		return c, false, nil
	}
	return c, true, r.apply(func() error { return setValue(dir, file, op.Type, op.Data) })
}

func (r *treeReg) apply(f func() error) error {
	if r.dry {
		return nil
	}
	r.wrote = true
	return f()
}

// setValue writes a value's exact bytes: as REG_BINARY (raw), then the
// type is set, which keeps the bytes (CONTRACT.md: set the type, then
// the content; a type change alone leaves the data as it is).
func setValue(dir, file string, typ uint32, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			return err
		}
	}
	if err := unix.Setxattr(file, typeXattr, []byte("REG_BINARY"), 0); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	if err := unix.Setxattr(file, typeXattr, []byte(registryfs.TypeName(typ)), 0); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
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

func (r *treeReg) setValues(key string, vals []regValue) error {
	dir, _, err := r.keyDir(`HKLM\SOFTWARE\` + key)
	if err != nil {
		return err
	}
	r.wrote = true
	for _, v := range vals {
		if err := setValue(dir, filepath.Join(dir, registryfs.EncodeName(v.name, true)), v.typ, v.data); err != nil {
			return err
		}
	}
	return nil
}
