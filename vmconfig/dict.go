package vmconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Dict is a VMware dictionary file (.vmx, .vmsd, .vmxf is XML and not
// one): `key = "value"` lines. Keys are case-insensitive in VMware's own
// reader, so they are kept lower-cased.
type Dict map[string]string

// ParseDict reads a VMware dictionary. Lines that are not `key = value`
// are skipped, as long as most lines are: a VM whose .vmx carries one odd
// line must still be known (its state keeps its disks safe), while a
// file of another kind is no dictionary.
func ParseDict(b []byte) (Dict, error) {
	d := Dict{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), maxConfig)
	bad := 0
	for sc.Scan() {
		s := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if s == "" || s[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"") {
			bad++
			continue
		}
		d[strings.ToLower(k)] = unquoteVMX(strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if bad > len(d) {
		return nil, fmt.Errorf("%d of %d lines are not key = value: %w", bad, bad+len(d), ErrNotConfig)
	}
	return d, nil
}

// readDict reads a dictionary and checks it is the kind it should be: a file
// of another kind fails with why, wrapping ErrNotConfig.
func readDict(r io.Reader, is func(Dict) bool, why string) (Dict, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	d, err := ParseDict(b)
	if err != nil {
		return nil, err
	}
	if !is(d) {
		return nil, fmt.Errorf("%s: %w", why, ErrNotConfig)
	}
	return d, nil
}

// unquoteVMX drops the quotes and decodes VMware's |XX escapes (|22 is a
// double quote, |7C a bar) in a value.
func unquoteVMX(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if !strings.Contains(v, "|") {
		return v
	}
	var out strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '|' && i+2 < len(v) {
			if n, err := strconv.ParseUint(v[i+1:i+3], 16, 8); err == nil {
				out.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		out.WriteByte(v[i])
	}
	return out.String()
}

// bool reads VMware's TRUE/FALSE (any case); def when absent.
func (d Dict) bool(key string, def bool) bool {
	v, ok := d[key]
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true", "yes", "1":
		return true
	case "false", "no", "0":
		return false
	}
	return def
}

// int reads a decimal value; nil when absent or not a number.
func (d Dict) int(key string) *int64 {
	v, ok := d[key]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return nil
	}
	return &n
}
