package guestdiff

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/offvm/offvm/mount"
	"github.com/offvm/offvm/registry/hive"
	"github.com/offvm/offvm/registry/winreg"
	"github.com/offvm/offvm/registryfs"
	"github.com/offvm/offvm/volume"
)

// maxShown bounds the data shown of one value.
const maxShown = 120

// registries compares the hives the two guests have, by where they are
// mounted (HKLM\SOFTWARE, HKU\<SID>, ...). A hive whose file and logs
// have the same size and mtime on both sides counts as the same (the
// quick check files get): a commit that changed a few values walks the
// hives it wrote, not every one.
func registries(a, b *mount.Image, lim *limits) ([]Change, error) {
	ha, fa := hiveSet(a)
	hb, fb := hiveSet(b)
	var out []Change
	for root, x := range ha {
		name := strings.ReplaceAll(root, "/", `\`)
		y, ok := hb[root]
		if !ok {
			out = append(out, Change{Op: "-", Kind: "key", Path: name})
			continue
		}
		if sameFiles(fa, fb, x.File) {
			continue
		}
		kx, err := loadRoot(a, fa, x)
		if err != nil {
			return nil, err
		}
		ky, err := loadRoot(b, fb, y)
		if err != nil {
			return nil, err
		}
		if out, err = keys(out, name, kx, ky, 0, lim); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	for root := range hb {
		if _, ok := ha[root]; !ok {
			out = append(out, Change{Op: "+", Kind: "key", Path: strings.ReplaceAll(root, "/", `\`)})
		}
	}
	return out, nil
}

// hiveSet lists a Windows guest's hives by root; none for another guest.
func hiveSet(im *mount.Image) (map[string]*winreg.Hive, volume.FS) {
	reg, _, err := im.Registry()
	if err != nil || reg == nil {
		return nil, nil
	}
	m := map[string]*winreg.Hive{}
	for _, h := range reg.All() {
		m[h.Root] = h
	}
	return m, reg.FS
}

func loadRoot(im *mount.Image, fs volume.FS, h *winreg.Hive) (*hive.Key, error) {
	hv, err := h.Load(fs)
	if err != nil {
		return nil, fmt.Errorf("%s: hive %s: %w", im.Path, h.File, err)
	}
	return hv.Root(), nil
}

// sameFiles reports whether a hive file and its logs have the same size
// and mtime in both file systems (and are there in both or neither).
func sameFiles(fa, fb volume.FS, file string) bool {
	for _, p := range []string{file, file + ".LOG1", file + ".LOG2", file + ".LOG"} {
		x, errA := volume.Resolve(fa, p)
		y, errB := volume.Resolve(fb, p)
		if (errA == nil) != (errB == nil) || errA == nil && (x.Size != y.Size || !x.Mtime.Equal(y.Mtime)) {
			return false
		}
	}
	return true
}

func keys(out []Change, path string, x, y *hive.Key, depth int, lim *limits) ([]Change, error) {
	if depth > 512 {
		return out, fmt.Errorf("%s: keys nested deeper than 512", path)
	}
	if err := lim.check(); err != nil {
		return out, err
	}
	// a key's last-written time moves whenever its values change (Windows
	// and offvm's hive editor both keep it so): equal times are the quick
	// check that spares decoding every value of an untouched key
	var err error
	if lw := x.LastWritten(); lw.IsZero() || !lw.Equal(y.LastWritten()) {
		if out, err = values(out, path, x, y); err != nil {
			return out, err
		}
	}
	sx, err := x.Subkeys()
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	sy, err := y.Subkeys()
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	inY := map[string]*hive.Key{}
	for _, k := range sy {
		inY[strings.ToLower(k.Name())] = k
	}
	for _, k := range sx {
		p := path + `\` + k.Name()
		o, ok := inY[strings.ToLower(k.Name())]
		delete(inY, strings.ToLower(k.Name()))
		if !ok {
			out = append(out, Change{Op: "-", Kind: "key", Path: p})
			continue
		}
		if out, err = keys(out, p, k, o, depth+1, lim); err != nil {
			return out, err
		}
	}
	for _, k := range sy {
		if _, ok := inY[strings.ToLower(k.Name())]; ok {
			if out, err = newKey(out, path+`\`+k.Name(), k, depth+1); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// newKey lists a key only B has, with its values and subkeys, so that
// a new key's data is in the diff too.
func newKey(out []Change, path string, k *hive.Key, depth int) ([]Change, error) {
	if depth > 512 {
		return out, fmt.Errorf("%s: keys nested deeper than 512", path)
	}
	out = append(out, Change{Op: "+", Kind: "key", Path: path})
	out, err := values(out, path, nil, k)
	if err != nil {
		return out, err
	}
	subs, err := k.Subkeys()
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range subs {
		if out, err = newKey(out, path+`\`+s.Name(), s, depth+1); err != nil {
			return out, err
		}
	}
	return out, nil
}

// values compares two keys' values (x nil: every value of y is new).
func values(out []Change, path string, x, y *hive.Key) ([]Change, error) {
	vx := map[string]*hive.Value{}
	if x != nil {
		list, err := x.Values()
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		for _, v := range list {
			vx[strings.ToLower(v.Name())] = v
		}
	}
	list, err := y.Values()
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	for _, v := range list {
		p := path + `\` + valueName(v.Name())
		old, ok := vx[strings.ToLower(v.Name())]
		delete(vx, strings.ToLower(v.Name()))
		nd, err := v.Data()
		if err != nil {
			return out, fmt.Errorf("%s: %w", p, err)
		}
		if !ok {
			out = append(out, Change{Op: "+", Kind: "value", Path: p, New: show(v.Type(), nd)})
			continue
		}
		od, err := old.Data()
		if err != nil {
			return out, fmt.Errorf("%s: %w", p, err)
		}
		if old.Type() != v.Type() || !bytes.Equal(od, nd) {
			out = append(out, Change{Op: "~", Kind: "value", Path: p, Old: show(old.Type(), od), New: show(v.Type(), nd)})
		}
	}
	for _, v := range vx {
		od, _ := v.Data()
		out = append(out, Change{Op: "-", Kind: "value", Path: path + `\` + valueName(v.Name()), Old: show(v.Type(), od)})
	}
	return out, nil
}

func valueName(n string) string {
	if n == "" {
		return "@"
	}
	return n
}

// show renders data as the registry view does (strings, numbers), hex
// for bytes that are not text, shortened.
func show(t uint32, data []byte) string {
	s := strings.TrimSuffix(string(registryfs.Render(t, data)), "\n")
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' }) {
		s = "hex:" + hex.EncodeToString(data)
	}
	s = strings.ReplaceAll(s, "\n", `\n`)
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	if t != hive.RegSz && t != hive.RegDword && t != hive.RegQword {
		s = registryfs.TypeName(t) + " " + s
	}
	return s
}
