package patcher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/offvm/offvm/hive"
	"github.com/offvm/offvm/regtext"
	"github.com/offvm/offvm/registryfs"
	"github.com/offvm/offvm/winreg"
)

// hiveFor gives the parsed hive an operation changes: the editable one
// for a real run, the loaded one for a dry run (changed in memory only,
// never written: the image is open read-only).
func (t *target) hiveFor(reg *winreg.Registry, h *winreg.Hive) (*hive.Hive, error) {
	if t.dry {
		return h.Load(reg.FS)
	}
	return reg.Editable(h)
}

// planRegistry performs the bundle's .reg operations on the hives in
// memory, in file and name order, skipping each one that would change
// nothing (a value that already holds the data, a key that exists).
func (t *target) planRegistry(b *Bundle, p *Plan) error {
	if len(b.Registry) == 0 {
		return nil
	}
	reg, _, err := t.im.Registry()
	if err != nil {
		return fmt.Errorf("registry/: %w", err)
	}
	for _, rf := range b.Registry {
		for _, op := range rf.Ops {
			if err := t.regOp(reg, op, p); err != nil {
				return fmt.Errorf("registry/%s line %d: %w", rf.Name, op.Line, err)
			}
		}
	}
	return nil
}

func (t *target) regOp(reg *winreg.Registry, op RegOp, p *Plan) error {
	h, rel, err := reg.Split(op.Key)
	if err != nil {
		return err
	}
	hv, err := t.hiveFor(reg, h)
	if err != nil {
		return err
	}
	c, changes, err := regChange(hv.Root(), op, rel)
	if err != nil {
		return err
	}
	if !changes {
		p.ValuesUnchanged++
		return nil
	}
	c.Path = strings.ReplaceAll(h.Root, "/", `\`) + prefixed(rel) + c.Path
	op.Key = rel
	if err := regtext.Apply(hv.Root(), []regtext.Op{op}, ""); err != nil {
		return err
	}
	p.Changes = append(p.Changes, c)
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
