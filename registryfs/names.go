package registryfs

import (
	"strings"
)

// Registry names may hold characters a file name cannot: "/" is written
// %2F, "%" is %25 and NUL is %00. The default (unnamed) value is the file
// "@", so a value literally named "@" is %40.

// EncodeName gives the file name of a key or value name.
func EncodeName(name string, isValue bool) string {
	if isValue && name == "" {
		return "@"
	}
	if isValue && name == "@" {
		return "%40"
	}
	if !strings.ContainsAny(name, "/%\x00") {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		switch r {
		case '/':
			b.WriteString("%2F")
		case '%':
			b.WriteString("%25")
		case 0:
			b.WriteString("%00")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// DecodeName reverses EncodeName. Unknown escapes stay as they are.
func DecodeName(file string, isValue bool) string {
	if isValue && file == "@" {
		return ""
	}
	if !strings.Contains(file, "%") {
		return file
	}
	var b strings.Builder
	for i := 0; i < len(file); i++ {
		if file[i] == '%' && i+2 < len(file) {
			switch strings.ToUpper(file[i+1 : i+3]) {
			case "2F":
				b.WriteByte('/')
				i += 2
				continue
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			case "00":
				b.WriteByte(0)
				i += 2
				continue
			case "40":
				b.WriteByte('@')
				i += 2
				continue
			}
		}
		b.WriteByte(file[i])
	}
	return b.String()
}
