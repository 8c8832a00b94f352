package patcher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"unicode/utf16"

	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/regtext"
	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/registryfs"
)

// regView is the Windows registry as the patch reaches it: the image's
// hives (imageReg) or a mounted tree's registry/ directory (treeReg).
type regView interface {
	// do performs op unless it would change nothing, and says what it
	// changed (in a dry run it only says).
	do(op RegOp) (Change, bool, error)
	// readRecord reads HKLM\SOFTWARE\offvm\Patches\<id>.
	readRecord(id string) (applied string, found bool, err error)
	// setValues creates key (below HKLM\SOFTWARE) and sets its values.
	setValues(key string, vals []regValue) error
}

type regValue struct {
	name string
	typ  uint32
	data []byte
}

// imageReg edits an image's hives in memory; the commit writes them.
type imageReg struct {
	reg *winreg.Registry
	dry bool
}

// hive gives the parsed hive an operation changes: the editable one for a
// real run, the loaded one for a dry run (changed in memory only, never
// written: the image is open read-only).
func (r *imageReg) hive(h *winreg.Hive) (*hive.Hive, error) {
	if r.dry {
		return h.Load(r.reg.FS)
	}
	return r.reg.Editable(h)
}

func (r *imageReg) do(op RegOp) (Change, bool, error) {
	h, rel, err := r.reg.Split(op.Key)
	if err != nil {
		return Change{}, false, err
	}
	hv, err := r.hive(h)
	if err != nil {
		return Change{}, false, err
	}
	c, changes, err := regChange(hv.Root(), op, rel)
	if err != nil || !changes {
		return c, false, err
	}
	c.Path = strings.ReplaceAll(h.Root, "/", `\`) + prefixed(rel) + c.Path
	op.Key = rel
	return c, true, regtext.Apply(hv.Root(), []regtext.Op{op}, "")
}

func (r *imageReg) software() (*hive.Hive, error) {
	h := r.reg.Hive("HKLM/SOFTWARE")
	if h == nil {
		return nil, fmt.Errorf("the image has no SOFTWARE hive to record patches in: %w", syscall.ENOENT)
	}
	return h.Load(r.reg.FS)
}

func (r *imageReg) readRecord(id string) (string, bool, error) {
	soft, err := r.software()
	if err != nil {
		return "", false, err
	}
	k, err := soft.Lookup(PatchesKey + `\` + id)
	if errors.Is(err, hive.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	applied := ""
	if v, err := k.Value("Applied"); err == nil {
		if d, err := v.Data(); err == nil {
			s, _ := utf16Text(d)
			applied = strings.TrimRight(s, "\x00")
		}
	}
	return applied, true, nil
}

func (r *imageReg) setValues(key string, vals []regValue) error {
	if _, err := r.software(); err != nil {
		return err
	}
	soft, err := r.hive(r.reg.Hive("HKLM/SOFTWARE"))
	if err != nil {
		return err
	}
	k, err := soft.Root().CreatePath(key)
	if err != nil {
		return err
	}
	for _, v := range vals {
		if err := k.SetValue(v.name, v.typ, v.data); err != nil {
			return fmt.Errorf("value %s: %w", v.name, err)
		}
	}
	return nil
}

// planRegistry performs the bundle's .reg operations in file and name
// order, skipping each one that would change nothing (a value that
// already holds the data, a key that exists).
func (t *target) planRegistry(b *Bundle, p *Plan) error {
	if len(b.Registry) == 0 {
		return nil
	}
	if t.reg == nil {
		return fmt.Errorf("registry/: the image holds no Windows registry")
	}
	for _, rf := range b.Registry {
		for _, op := range rf.Ops {
			c, changes, err := t.reg.do(op)
			if err != nil {
				return fmt.Errorf("registry/%s line %d: %w", rf.Name, op.Line, err)
			}
			if !changes {
				p.ValuesUnchanged++
				continue
			}
			p.Changes = append(p.Changes, c)
		}
	}
	return nil
}

func prefixed(rel string) string {
	if rel == "" {
		return ""
	}
	return `\` + rel
}

// regChange says what op would change on the hive as it is now (Path is
// filled with the value part only), and whether it changes anything.
func regChange(root *hive.Key, op RegOp, rel string) (Change, bool, error) {
	k, err := root.Lookup(rel)
	if err != nil && !errors.Is(err, hive.ErrNotFound) {
		return Change{}, false, err
	}
	exists := err == nil
	switch op.Kind {
	case regtext.CreateKey:
		return Change{Action: "create-key"}, !exists, nil
	case regtext.DeleteKey:
		return Change{Action: "delete-key"}, exists, nil
	case regtext.DeleteValue:
		if !exists {
			return Change{}, false, nil
		}
		_, err := k.Value(op.Name)
		if errors.Is(err, hive.ErrNotFound) {
			return Change{}, false, nil
		}
		return Change{Action: "delete-value", Path: valuePath(op.Name)}, err == nil, err
	}
	c := Change{Action: "set", Path: valuePath(op.Name), Detail: "= " + showValue(op.Type, op.Data)}
	if !exists {
		return c, true, nil
	}
	v, err := k.Value(op.Name)
	if errors.Is(err, hive.ErrNotFound) {
		return c, true, nil
	}
	if err != nil {
		return c, false, err
	}
	data, err := v.Data()
	if err != nil {
		return c, false, err
	}
	if v.Type() == op.Type && bytes.Equal(data, op.Data) {
		return c, false, nil
	}
	c.Detail += " (was " + showValue(v.Type(), data) + ")"
	return c, true, nil
}

func valuePath(name string) string {
	if name == "" {
		return `\@`
	}
	return `\"` + name + `"`
}

// showValue renders a value for --dry-run: its type and a readable form.
func showValue(typ uint32, data []byte) string {
	name := registryfs.TypeName(typ)
	switch typ {
	case hive.RegSz, hive.RegExpandSz, hive.RegLink:
		if s, ok := utf16Text(data); ok {
			return fmt.Sprintf("%s %q", name, strings.TrimRight(s, "\x00"))
		}
	case hive.RegMultiSz:
		if s, ok := utf16Text(data); ok {
			return fmt.Sprintf("%s %q", name, strings.Split(strings.TrimRight(s, "\x00"), "\x00"))
		}
	case hive.RegDword:
		if len(data) == 4 {
			return fmt.Sprintf("%s %d", name, binary.LittleEndian.Uint32(data))
		}
	case hive.RegQword:
		if len(data) == 8 {
			return fmt.Sprintf("%s %d", name, binary.LittleEndian.Uint64(data))
		}
	}
	if len(data) > 32 {
		return fmt.Sprintf("%s %x... (%d bytes)", name, data[:32], len(data))
	}
	return fmt.Sprintf("%s %x", name, data)
}

func utf16Text(b []byte) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), true
}
