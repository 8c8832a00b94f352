package patcher

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/offvm/offvm/registry/regtext"
)

// RegOp is one operation of a .reg file.
type RegOp = regtext.Op

const (
	maxDepth   = 64       // directory levels under files/<volume>/
	maxEntries = 1 << 20  // files and directories in a bundle
	maxRegFile = 64 << 20 // bytes of one .reg file
)

// walkFiles lists files/<volume>/... parents first, refusing links,
// special files, names the volume cannot hold and names that differ only
// in case inside one directory of a Windows drive.
func walkFiles(dir string) ([]File, error) {
	root := filepath.Join(dir, "files")
	ents, err := readDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %v: %w", dir, err, ErrBundle)
	}
	var out []File
	seen := map[string]bool{}
	for _, e := range ents {
		var t Target
		var ok bool
		t.Drive, t.Part, ok = volumeName(e.Name())
		if !ok || !e.IsDir() {
			return nil, fmt.Errorf("bundle %s: files/%s: want a directory named for a drive letter (C) or a partition (p1): %w", dir, e.Name(), ErrBundle)
		}
		key := t.String()
		if seen[key] {
			return nil, fmt.Errorf("bundle %s: files/%s: volume named twice: %w", dir, e.Name(), ErrBundle)
		}
		seen[key] = true
		if out, err = walkVolume(filepath.Join(root, e.Name()), t, 0, out); err != nil {
			return nil, fmt.Errorf("bundle %s: %v: %w", dir, err, ErrBundle)
		}
	}
	return out, nil
}

// walkVolume appends the entries under host directory src, which maps to
// target t on the image.
func walkVolume(src string, t Target, depth int, out []File) ([]File, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: deeper than %d levels", src, maxDepth)
	}
	ents, err := readDir(src)
	if err != nil {
		return nil, err
	}
	folded := map[string]string{}
	for _, e := range ents {
		name := e.Name()
		if err := checkName(t, name); err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(src, name), err)
		}
		if t.Drive != "" {
			if other, dup := folded[strings.ToLower(name)]; dup {
				return nil, fmt.Errorf("%s: %q and %q differ only in case, and Windows cannot hold both", src, other, name)
			}
			folded[strings.ToLower(name)] = name
		}
		if len(out) >= maxEntries {
			return nil, fmt.Errorf("more than %d entries", maxEntries)
		}
		child := Target{Drive: t.Drive, Part: t.Part, Path: append(append([]string{}, t.Path...), name)}
		p := filepath.Join(src, name)
		info, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case info.IsDir():
			out = append(out, File{Target: child, Src: p, IsDir: true})
			if out, err = walkVolume(p, child, depth+1, out); err != nil {
				return nil, err
			}
		case info.Mode().IsRegular():
			out = append(out, File{Target: child, Src: p, Size: info.Size()})
		default:
			return nil, fmt.Errorf("%s: %s, not a file or a directory (links leave the bundle and are refused)", p, info.Mode().Type())
		}
	}
	return out, nil
}

// readDir lists a directory in name order without following links.
func readDir(dir string) ([]fs.DirEntry, error) {
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (links are refused)", dir)
	}
	return os.ReadDir(dir)
}

// loadRegistry parses registry/*.reg in name order.
func loadRegistry(dir string) ([]RegFile, error) {
	root := filepath.Join(dir, "registry")
	ents, err := readDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %v: %w", dir, err, ErrBundle)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var out []RegFile
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if !strings.EqualFold(filepath.Ext(e.Name()), ".reg") {
			return nil, fmt.Errorf("bundle %s: registry/%s: only .reg files belong here: %w", dir, e.Name(), ErrBundle)
		}
		ops, err := readReg(p)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: registry/%s: %v: %w", dir, e.Name(), err, ErrBundle)
		}
		out = append(out, RegFile{Name: e.Name(), Ops: ops})
	}
	return out, nil
}

func readReg(p string) ([]RegOp, error) {
	if err := regularFile(p); err != nil {
		return nil, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxRegFile {
		return nil, fmt.Errorf("%d bytes, more than the %d a .reg file may hold", st.Size(), maxRegFile)
	}
	text, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	ops, err := regtext.Parse(text)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		parts := strings.FieldsFunc(op.Key, func(r rune) bool { return r == '\\' })
		root := ""
		if len(parts) > 0 {
			root = strings.ToUpper(parts[0])
		}
		switch root {
		case "HKLM", "HKEY_LOCAL_MACHINE", "HKU", "HKEY_USERS":
		default:
			return nil, fmt.Errorf("line %d: key %q: offvm writes HKEY_LOCAL_MACHINE and HKEY_USERS only", op.Line, op.Key)
		}
		// CurrentControlSet is a link a running Windows makes; offline it
		// would become a real key that Windows never reads.
		if len(parts) > 2 && (root == "HKLM" || root == "HKEY_LOCAL_MACHINE") && strings.EqualFold(parts[1], "SYSTEM") && strings.EqualFold(parts[2], "CurrentControlSet") {
			return nil, fmt.Errorf("line %d: key %q: CurrentControlSet exists only in a running Windows; name ControlSet001 (HKLM\\SYSTEM\\Select says which is current)", op.Line, op.Key)
		}
	}
	return ops, nil
}
