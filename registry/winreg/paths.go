package winreg

import (
	"fmt"
	"strings"
	"syscall"
)

// rootAliases are the spellings of the two roots offvm serves.
var rootAliases = map[string]string{
	"HKLM": "HKLM", "HKEY_LOCAL_MACHINE": "HKLM",
	"HKU": "HKU", "HKEY_USERS": "HKU",
}

// Split turns a registry path as users write it (HKLM\SOFTWARE\Foo,
// HKEY_LOCAL_MACHINE\SOFTWARE\Foo, HKU\S-1-5-...\Bar; "/" is part of a name) into
// the hive it falls in and the path below that hive's root.
func (r *Registry) Split(path string) (*Hive, string, error) {
	parts := strings.FieldsFunc(path, func(c rune) bool { return c == '\\' })
	if len(parts) < 2 {
		return nil, "", fmt.Errorf("registry path %q: name a hive, as HKLM\\SOFTWARE\\...: %w", path, syscall.EINVAL)
	}
	root, ok := rootAliases[strings.ToUpper(parts[0])]
	if !ok {
		return nil, "", fmt.Errorf("registry path %q: offvm serves HKLM and HKU (HKEY_LOCAL_MACHINE, HKEY_USERS): %w", path, syscall.EINVAL)
	}
	name := parts[1]
	if root == "HKU" {
		if sid, ok := r.Aliases()[name]; ok {
			name = sid
		}
	}
	h := r.Hive(root + "/" + name)
	if h == nil {
		return nil, "", fmt.Errorf("registry path %q: no hive %s\\%s in this image: %w", path, root, name, syscall.ENOENT)
	}
	return h, strings.Join(parts[2:], `\`), nil
}

// LongPrefix is how regedit spells a hive's root: HKEY_LOCAL_MACHINE\SOFTWARE.
func (h *Hive) LongPrefix() string {
	root, name, _ := strings.Cut(h.Root, "/")
	if root == "HKLM" {
		return `HKEY_LOCAL_MACHINE\` + name
	}
	return `HKEY_USERS\` + name
}
