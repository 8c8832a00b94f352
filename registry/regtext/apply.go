package regtext

import (
	"errors"
	"fmt"
	"strings"

	"github.com/offvm/offvm/registry/hive"
)

// Apply performs ops on the hive whose root is root. prefix is the part of
// the keys' paths that names the hive (e.g. `HKEY_LOCAL_MACHINE\SOFTWARE`;
// "" when paths start at the hive's root, like `\Foo` or `Foo`). A key
// outside the prefix is an error; missing parent keys are created;
// deleting what does not exist is not an error, as in regedit.
func Apply(root *hive.Key, ops []Op, prefix string) error {
	for _, op := range ops {
		rel, ok := relPath(op.Key, prefix)
		if !ok {
			return fmt.Errorf("reg file line %d: key %q is not under %q: %w", op.Line, op.Key, prefix, hive.ErrInvalid)
		}
		if err := applyOne(root, op, rel); err != nil {
			return fmt.Errorf("reg file line %d: %w", op.Line, err)
		}
	}
	return nil
}

func applyOne(root *hive.Key, op Op, rel string) error {
	switch op.Kind {
	case DeleteKey:
		k, err := root.Lookup(rel)
		if errors.Is(err, hive.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if k.Parent() == nil {
			return fmt.Errorf("the root key of a hive cannot be deleted: %w", hive.ErrInvalid)
		}
		return k.Parent().DeleteSubkey(k.Name())
	case CreateKey:
		_, err := root.CreatePath(rel)
		return err
	case SetValue:
		k, err := root.CreatePath(rel)
		if err != nil {
			return err
		}
		return k.SetValue(op.Name, op.Type, op.Data)
	case DeleteValue:
		k, err := root.Lookup(rel)
		if errors.Is(err, hive.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := k.DeleteValue(op.Name); err != nil && !errors.Is(err, hive.ErrNotFound) {
			return err
		}
	}
	return nil
}

// relPath strips the hive's prefix from a key path, case-insensitively.
func relPath(key, prefix string) (string, bool) {
	prefix = strings.Trim(prefix, `\`)
	if prefix == "" {
		return strings.TrimLeft(key, `\`), true
	}
	if len(key) < len(prefix) || !strings.EqualFold(key[:len(prefix)], prefix) {
		return "", false
	}
	rest := key[len(prefix):]
	if rest != "" && rest[0] != '\\' {
		return "", false
	}
	return strings.TrimLeft(rest, `\`), true
}
