package lvm

import (
	"fmt"
	"strconv"
)

// A value of the metadata text: a string, a number, a list of values, or
// a section of named values.
type value struct {
	str     string
	num     int64
	isNum   bool
	list    []value
	isList  bool
	section *section
}

// section is a "name { ... }" block, its keys in file order.
type section struct {
	keys []string
	vals map[string]value
}

func (s *section) get(k string) (value, bool) {
	if s == nil {
		return value{}, false
	}
	v, ok := s.vals[k]
	return v, ok
}

func (s *section) sub(k string) *section {
	v, _ := s.get(k)
	return v.section
}

func (s *section) str(k string) string {
	v, _ := s.get(k)
	return v.str
}

func (s *section) num(k string) (int64, bool) {
	v, ok := s.get(k)
	return v.num, ok && v.isNum
}

// strs is a list of strings (status and flags lists).
func (s *section) strs(k string) []string {
	v, _ := s.get(k)
	var out []string
	for _, e := range v.list {
		if !e.isNum {
			out = append(out, e.str)
		}
	}
	return out
}

// parser reads LVM2's configuration syntax: name = value, name { ... },
// strings in double quotes with backslash escapes, lists in brackets,
// comments from # to the end of the line.
type parser struct {
	b     []byte
	p     int
	depth int
}

const maxDepth = 16

func parseText(b []byte) (*section, error) {
	ps := &parser{b: b}
	s, err := ps.body(false)
	if err != nil {
		return nil, fmt.Errorf("metadata text at byte %d: %v: %w", ps.p, err, ErrCorrupt)
	}
	return s, nil
}

func (ps *parser) skip() {
	for ps.p < len(ps.b) {
		switch c := ps.b[ps.p]; {
		case c == '#':
			for ps.p < len(ps.b) && ps.b[ps.p] != '\n' {
				ps.p++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0:
			ps.p++
		default:
			return
		}
	}
}

func (ps *parser) body(inner bool) (*section, error) {
	s := &section{vals: map[string]value{}}
	for {
		ps.skip()
		if ps.p >= len(ps.b) {
			if inner {
				return nil, fmt.Errorf("section not closed")
			}
			return s, nil
		}
		if ps.b[ps.p] == '}' {
			if !inner {
				return nil, fmt.Errorf("unexpected }")
			}
			ps.p++
			return s, nil
		}
		name := ps.ident()
		if name == "" {
			return nil, fmt.Errorf("expected a name, found %q", ps.b[ps.p])
		}
		ps.skip()
		if ps.p >= len(ps.b) {
			return nil, fmt.Errorf("%s: unexpected end", name)
		}
		var v value
		switch ps.b[ps.p] {
		case '{':
			ps.p++
			if ps.depth++; ps.depth > maxDepth {
				return nil, fmt.Errorf("sections nested too deep")
			}
			sub, err := ps.body(true)
			ps.depth--
			if err != nil {
				return nil, err
			}
			v.section = sub
		case '=':
			ps.p++
			ps.skip()
			var err error
			if v, err = ps.value(true); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
		default:
			return nil, fmt.Errorf("%s: expected = or {", name)
		}
		if _, dup := s.vals[name]; !dup {
			s.keys = append(s.keys, name)
		}
		s.vals[name] = v
	}
}

func (ps *parser) ident() string {
	st := ps.p
	for ps.p < len(ps.b) {
		c := ps.b[ps.p]
		if c == '_' || c == '-' || c == '.' || c == '+' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			ps.p++
			continue
		}
		break
	}
	return string(ps.b[st:ps.p])
}

func (ps *parser) value(listOK bool) (value, error) {
	if ps.p >= len(ps.b) {
		return value{}, fmt.Errorf("missing value")
	}
	switch c := ps.b[ps.p]; {
	case c == '"':
		return ps.quoted()
	case c == '[' && listOK:
		ps.p++
		v := value{isList: true}
		for {
			ps.skip()
			if ps.p >= len(ps.b) {
				return value{}, fmt.Errorf("list not closed")
			}
			if ps.b[ps.p] == ']' {
				ps.p++
				return v, nil
			}
			e, err := ps.value(false)
			if err != nil {
				return value{}, err
			}
			v.list = append(v.list, e)
			ps.skip()
			if ps.p < len(ps.b) && ps.b[ps.p] == ',' {
				ps.p++
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		st := ps.p
		ps.p++
		for ps.p < len(ps.b) && (ps.b[ps.p] >= '0' && ps.b[ps.p] <= '9' || ps.b[ps.p] == '.') {
			ps.p++
		}
		txt := string(ps.b[st:ps.p])
		n, err := strconv.ParseInt(txt, 10, 64)
		if err != nil {
			if f, ferr := strconv.ParseFloat(txt, 64); ferr == nil {
				return value{num: int64(f), isNum: true, str: txt}, nil
			}
			return value{}, fmt.Errorf("bad number %q", txt)
		}
		return value{num: n, isNum: true, str: txt}, nil
	}
	return value{}, fmt.Errorf("unexpected %q", ps.b[ps.p])
}

func (ps *parser) quoted() (value, error) {
	ps.p++
	var out []byte
	for ps.p < len(ps.b) {
		c := ps.b[ps.p]
		ps.p++
		switch c {
		case '"':
			return value{str: string(out)}, nil
		case '\\':
			if ps.p < len(ps.b) {
				out = append(out, ps.b[ps.p])
				ps.p++
			}
		default:
			out = append(out, c)
		}
	}
	return value{}, fmt.Errorf("string not closed")
}
