package registryfs

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Registry names may hold what a file name cannot (CONTRACT.md): "/" is
// written %2F, "%" is %25 and NUL is %00; the default (unnamed) value is
// the file "@", so a value literally named "@" is %40. Where the contract
// is silent, the same escape serves: a key or value named "." or ".." is
// %2E or %2E%2E, and a value whose name is also a subkey's name (common in
// real hives: BagMRU holds key 0 and value 0) is shown with its first
// character escaped (%30), so both can be reached. Any %XX decodes to the
// byte XX.

// EncodeName gives the file name of a key or value name.
func EncodeName(name string, isValue bool) string {
	switch {
	case isValue && name == "":
		return "@"
	case isValue && name == "@":
		return "%40"
	case name == ".":
		return "%2E"
	case name == "..":
		return "%2E%2E"
	}
	if !strings.ContainsAny(name, "/%\x00") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/':
			b.WriteString("%2F")
		case '%':
			b.WriteString("%25")
		case 0:
			b.WriteString("%00")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// EncodeShadowed gives the file name of a value whose name is also the
// name of a subkey: its first character (every byte of it) escaped.
func EncodeShadowed(name string) string {
	enc := EncodeName(name, true)
	if strings.HasPrefix(enc, "%") || enc == "@" {
		return enc // already distinct from any key's name
	}
	_, size := utf8.DecodeRuneInString(enc)
	var b strings.Builder
	for _, c := range []byte(enc[:size]) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String() + enc[size:]
}

// DecodeName reverses EncodeName and EncodeShadowed.
func DecodeName(file string, isValue bool) string {
	if isValue && file == "@" {
		return ""
	}
	if !strings.Contains(file, "%") {
		return file
	}
	var b []byte
	for i := 0; i < len(file); i++ {
		if file[i] == '%' && i+2 < len(file) {
			if v, ok := unhex(file[i+1], file[i+2]); ok {
				b = append(b, v)
				i += 2
				continue
			}
		}
		b = append(b, file[i])
	}
	return string(b)
}

// Canonical reports whether file is the plain encoding of its name; a
// non-canonical spelling (an escape that was not needed) names a value
// shadowed by a subkey of the same name.
func Canonical(file string, isValue bool) bool {
	return EncodeName(DecodeName(file, isValue), isValue) == file
}

func unhex(a, b byte) (byte, bool) {
	h := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	x, ok1 := h(a)
	y, ok2 := h(b)
	return x<<4 | y, ok1 && ok2
}
