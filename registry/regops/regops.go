// Package regops is `offvm reg`: export a key as regedit text, and import
// a .reg file into an image's hives as one committed transaction, without
// a mount.
package regops

import (
	"errors"
	"fmt"
	"io"

	"github.com/offvm/offvm/library"
	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/registry/regtext"
	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/txn"
)

// Export prints the key at path (HKLM\SOFTWARE\...) of the image.
func Export(w io.Writer, image, path string) error {
	im, err := mount.Open(image, mount.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer im.Close()
	reg, _, err := im.Registry()
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	h, rel, err := reg.Split(path)
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	hv, err := h.Load(reg.FS)
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	k, err := hv.Lookup(rel)
	if err != nil {
		return fmt.Errorf("%s: key %s: %w", image, path, err)
	}
	return regtext.Export(w, k, regtext.ExportOptions{Prefix: h.LongPrefix()})
}

// Result says what an import did.
type Result struct {
	Ops    int
	Commit txn.Result
}

// Import merges a .reg file into the image and commits it: all of the
// file or, on any error, nothing.
func Import(image string, text []byte, name string) (Result, error) {
	ops, err := regtext.Parse(text)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	im, err := mount.Open(image, mount.Options{ReadOnlyReason: library.WriteReason(image)})
	if err != nil {
		return Result{}, err
	}
	defer im.Close()
	if r := im.ReadOnlyReason(); r != "" {
		return Result{}, fmt.Errorf("%s: cannot write: %s", image, r)
	}
	reg, _, err := im.Registry()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", image, err)
	}
	if err := apply(reg, ops); err != nil {
		return Result{}, fmt.Errorf("%s: importing %s: %w", image, name, err)
	}
	res, err := im.Commit()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", image, err)
	}
	return Result{Ops: len(ops), Commit: res}, nil
}

// apply routes each operation to the hive its key falls in.
func apply(reg *winreg.Registry, ops []regtext.Op) error {
	for _, op := range ops {
		h, rel, err := reg.Split(op.Key)
		if err != nil {
			return fmt.Errorf("line %d: %w", op.Line, err)
		}
		hv, err := reg.Editable(h)
		if err != nil {
			return fmt.Errorf("line %d: %w", op.Line, err)
		}
		op.Key = rel
		if err := regtext.Apply(hv.Root(), []regtext.Op{op}, ""); err != nil {
			return err
		}
	}
	if len(ops) == 0 {
		return errors.New("the file holds no keys")
	}
	return nil
}
