package fat

import (
	"strconv"
	"strings"
)

// shortChar reports whether an ASCII byte may appear in an 8.3 name.
func shortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// caseOf classifies the letters of s: lower, upper, or mixed (both).
func caseOf(s string) (lower, upper bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		lower = lower || (c >= 'a' && c <= 'z')
		upper = upper || (c >= 'A' && c <= 'Z')
	}
	return lower, upper
}

func pad83(base, ext string) [11]byte {
	var n [11]byte
	for i := range n {
		n[i] = ' '
	}
	copy(n[0:8], base)
	copy(n[8:11], ext)
	return n
}

// exact83 returns the 8.3 form of name when name already is one (letters
// in either case), with the NT flags that keep an all-lower-case base or
// extension, and whether the case still needs a long name (mixed case).
func exact83(name string) (n [11]byte, ntres byte, mixed, ok bool) {
	base, ext, _ := strings.Cut(name, ".")
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") ||
		(ext == "" && strings.HasSuffix(name, ".")) {
		return n, 0, false, false
	}
	up := strings.ToUpper(base + ext)
	for i := 0; i < len(up); i++ {
		if !shortChar(up[i]) {
			return n, 0, false, false
		}
	}
	bl, bu := caseOf(base)
	el, eu := caseOf(ext)
	if bl && bu || el && eu {
		mixed = true
	} else {
		if bl {
			ntres |= ntLowerBase
		}
		if el {
			ntres |= ntLowerExt
		}
	}
	return pad83(strings.ToUpper(base), strings.ToUpper(ext)), ntres, mixed, true
}

// basis83 is the Windows-style basis of a generated short name: upper
// case, spaces and leading dots dropped, the extension taken after the
// last dot, and characters 8.3 cannot hold replaced by '_'.
func basis83(name string) (base, ext string) {
	clean := func(s string, limit int) string {
		var sb strings.Builder
		for _, r := range strings.ToUpper(s) {
			if sb.Len() >= limit {
				break
			}
			switch {
			case r == ' ' || r == '.':
			case r < 0x80 && shortChar(byte(r)):
				sb.WriteByte(byte(r))
			default:
				sb.WriteByte('_')
			}
		}
		return sb.String()
	}
	name = strings.TrimLeft(name, ". ")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
	} else {
		base = name
	}
	base, ext = clean(base, 8), clean(ext, 3)
	if base == "" {
		base = "_"
	}
	return base, ext
}

// shortFor picks the 8.3 name of a new entry: the name itself when it is
// one and free, else basis~N with the smallest free N. lfn says whether a
// long name must go with it.
func shortFor(name string, taken func([11]byte) bool) (n [11]byte, ntres byte, lfn, ok bool) {
	if n, ntres, mixed, ok := exact83(name); ok && !taken(n) {
		if mixed {
			ntres = 0
		}
		return n, ntres, mixed, true
	}
	base, ext := basis83(name)
	for i := 1; i < 1_000_000; i++ {
		tail := "~" + strconv.Itoa(i)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		n = pad83(b+tail, ext)
		if !taken(n) {
			return n, 0, true, true
		}
	}
	return n, 0, true, false
}
