package regtext

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax marks a .reg file that does not parse.
var ErrSyntax = errors.New("reg file syntax error")

// OpKind is what an Op does.
type OpKind int

// The operations a .reg file holds.
const (
	CreateKey   OpKind = iota // [Key]: create the key (and missing parents)
	DeleteKey                 // [-Key]: delete the key and its subtree
	SetValue                  // "name"=data or @=data
	DeleteValue               // "name"=- or @=-
)

// Op is one operation, in file order. Key is the full path as written in
// the file (e.g. `HKEY_LOCAL_MACHINE\SOFTWARE\Foo`).
type Op struct {
	Kind OpKind
	Key  string
	Name string // value name, "" for the default value
	Type uint32
	Data []byte
	Line int // line number in the file, for messages
}

// Parse reads a .reg file: UTF-16LE with a BOM, or UTF-8 (with or without
// a BOM). Both "REGEDIT4" and "Windows Registry Editor Version 5.00"
// headers are accepted; in a REGEDIT4 file the data of hex(2) and hex(7)
// values is ANSI, and is widened to UTF-16LE as regedit does.
func Parse(file []byte) ([]Op, error) {
	text, err := decodeText(file)
	if err != nil {
		return nil, err
	}
	p := &parser{}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line, first := strings.TrimRight(lines[i], "\r"), i+1
		for strings.HasSuffix(strings.TrimRight(line, " \t"), `\`) && i+1 < len(lines) {
			line = strings.TrimRight(line, " \t")
			i++
			line = line[:len(line)-1] + strings.TrimLeft(strings.TrimRight(lines[i], "\r"), " \t")
		}
		if err := p.line(line, first); err != nil {
			return nil, err
		}
	}
	if !p.header {
		return nil, fmt.Errorf("reg file: no REGEDIT4 or %q header: %w", Header, ErrSyntax)
	}
	return p.ops, nil
}

// decodeText turns the file's bytes into a string.
func decodeText(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		b = b[2:]
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	if len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF {
		return "", fmt.Errorf("reg file: UTF-16 big endian is not a regedit encoding: %w", ErrSyntax)
	}
	s := strings.TrimPrefix(string(b), "\uFEFF")
	if utf8.ValidString(s) {
		return s, nil
	}
	// An ANSI REGEDIT4 file: read it as Latin-1.
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r), nil
}

type parser struct {
	ops    []Op
	header bool
	v4     bool
	key    string // current [Key], "" when outside one
}

func (p *parser) line(line string, n int) error {
	t := strings.TrimSpace(line)
	if !p.header {
		switch {
		case t == "":
			return nil
		case t == "REGEDIT4":
			p.header, p.v4 = true, true
			return nil
		case t == Header:
			p.header = true
			return nil
		}
		return fmt.Errorf("reg file line %d: expected a header, found %q: %w", n, t, ErrSyntax)
	}
	switch {
	case t == "" || strings.HasPrefix(t, ";"):
		return nil
	case strings.HasPrefix(t, "[-") && strings.HasSuffix(t, "]"):
		p.key = ""
		p.ops = append(p.ops, Op{Kind: DeleteKey, Key: cleanKey(t[2 : len(t)-1]), Line: n})
		return nil
	case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
		p.key = cleanKey(t[1 : len(t)-1])
		p.ops = append(p.ops, Op{Kind: CreateKey, Key: p.key, Line: n})
		return nil
	}
	if p.key == "" {
		return fmt.Errorf("reg file line %d: value outside a [key] section: %w", n, ErrSyntax)
	}
	return p.value(strings.TrimLeft(line, " \t"), n)
}

// cleanKey trims spaces and a trailing backslash from a key path.
func cleanKey(k string) string {
	return strings.TrimRight(strings.TrimSpace(k), `\`)
}

// value parses `"name"=data`, `@=data` and their `=-` deletions.
func (p *parser) value(line string, n int) error {
	var name, rest string
	switch {
	case strings.HasPrefix(line, "@"):
		rest = strings.TrimLeft(line[1:], " \t")
	case strings.HasPrefix(line, `"`):
		var ok bool
		name, rest, ok = quoted(line)
		if !ok {
			return fmt.Errorf("reg file line %d: unterminated value name: %w", n, ErrSyntax)
		}
		rest = strings.TrimLeft(rest, " \t")
	default:
		return fmt.Errorf("reg file line %d: unexpected %q: %w", n, line, ErrSyntax)
	}
	if !strings.HasPrefix(rest, "=") {
		return fmt.Errorf("reg file line %d: no '=' after the value name: %w", n, ErrSyntax)
	}
	rest = strings.TrimSpace(rest[1:])
	if rest == "-" {
		p.ops = append(p.ops, Op{Kind: DeleteValue, Key: p.key, Name: name, Line: n})
		return nil
	}
	typ, data, err := p.data(rest)
	if err != nil {
		return fmt.Errorf("reg file line %d: value %q: %v: %w", n, name, err, ErrSyntax)
	}
	p.ops = append(p.ops, Op{Kind: SetValue, Key: p.key, Name: name, Type: typ, Data: data, Line: n})
	return nil
}

// quoted reads a "..." string where a backslash escapes the next character.
func quoted(s string) (string, string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// data parses the right-hand side of a value line.
func (p *parser) data(s string) (uint32, []byte, error) {
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(s, `"`):
		str, rest, ok := quoted(s)
		if !ok || strings.TrimSpace(rest) != "" {
			return 0, nil, errors.New("bad quoted string")
		}
		return 1, utf16z(str), nil
	case strings.HasPrefix(lower, "dword:"):
		v, err := strconv.ParseUint(strings.TrimSpace(s[6:]), 16, 32)
		if err != nil || len(strings.TrimSpace(s[6:])) > 8 {
			return 0, nil, errors.New("dword needs 1 to 8 hex digits")
		}
		return 4, binary.LittleEndian.AppendUint32(nil, uint32(v)), nil
	case strings.HasPrefix(lower, "hex:"):
		b, err := hexBytes(s[4:])
		return 3, b, err
	case strings.HasPrefix(lower, "hex("):
		end := strings.Index(lower, "):")
		if end < 0 {
			return 0, nil, errors.New("bad hex(type):")
		}
		t, err := strconv.ParseUint(s[4:end], 16, 32)
		if err != nil {
			return 0, nil, errors.New("bad type number in hex(type):")
		}
		b, err := hexBytes(s[end+2:])
		if err == nil && p.v4 && (t == 2 || t == 7) {
			b = widen(b)
		}
		return uint32(t), b, err
	case strings.HasPrefix(lower, "str(") || strings.HasPrefix(lower, "str:"):
		// hivexregedit's extension: str(type):"text".
		t, rest := uint64(1), s[4:]
		if lower[3] == '(' {
			end := strings.Index(s, "):")
			if end < 0 {
				return 0, nil, errors.New("bad str(type):")
			}
			var err error
			if t, err = strconv.ParseUint(s[4:end], 16, 32); err != nil {
				return 0, nil, errors.New("bad type number in str(type):")
			}
			rest = s[end+2:]
		}
		str, tail, ok := quoted(rest)
		if !ok || strings.TrimSpace(tail) != "" {
			return 0, nil, errors.New("bad quoted string")
		}
		return uint32(t), utf16z(str), nil
	}
	return 0, nil, fmt.Errorf("unknown data %q", s)
}

// hexBytes parses "aa,bb, cc" (spaces and a trailing comma allowed).
func hexBytes(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ',' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("bad hex bytes: %v", err)
	}
	return b, nil
}

// utf16z is a string as UTF-16LE with its terminating NUL, as regedit
// stores REG_SZ.
func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u)+2)
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// widen turns ANSI (Latin-1) bytes into UTF-16LE.
func widen(b []byte) []byte {
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i] = c
	}
	return out
}
