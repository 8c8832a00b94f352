package registryfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/offvm/offvm/registry/hive"
)

// Values read and write in the style of sysfs (CONTRACT.md): strings as
// UTF-8 text with a newline, numbers in decimal, everything else raw.

var typeNames = map[uint32]string{
	hive.RegNone: "REG_NONE", hive.RegSz: "REG_SZ", hive.RegExpandSz: "REG_EXPAND_SZ",
	hive.RegBinary: "REG_BINARY", hive.RegDword: "REG_DWORD", hive.RegDwordBigEndian: "REG_DWORD_BIG_ENDIAN",
	hive.RegLink: "REG_LINK", hive.RegMultiSz: "REG_MULTI_SZ", hive.RegResourceList: "REG_RESOURCE_LIST",
	hive.RegFullResourceDescriptor:   "REG_FULL_RESOURCE_DESCRIPTOR",
	hive.RegResourceRequirementsList: "REG_RESOURCE_REQUIREMENTS_LIST", hive.RegQword: "REG_QWORD",
}

// TypeName is the user.reg.type of a value type.
func TypeName(t uint32) string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("0x%x", t)
}

// ParseType reads a user.reg.type: a name, or 0x and hex.
func ParseType(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	for t, n := range typeNames {
		if strings.EqualFold(n, s) {
			return t, nil
		}
	}
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		if v, err := strconv.ParseUint(h, 16, 32); err == nil {
			return uint32(v), nil
		}
	}
	return 0, fmt.Errorf("registry type %q: %w", s, syscall.EINVAL)
}

func isString(t uint32) bool {
	return t == hive.RegSz || t == hive.RegExpandSz || t == hive.RegLink
}

// Render gives the file content of a value. Data that does not decode as
// its type is shown raw.
func Render(t uint32, data []byte) []byte {
	switch {
	case isString(t):
		if s, ok := utf16String(data); ok {
			return []byte(s + "\n")
		}
	case t == hive.RegMultiSz:
		if s, ok := utf16String(data); ok {
			parts := strings.Split(strings.TrimRight(s, "\x00"), "\x00")
			if s == "" || strings.Trim(s, "\x00") == "" {
				return []byte{}
			}
			return []byte(strings.Join(parts, "\n") + "\n")
		}
	case t == hive.RegDword && len(data) == 4:
		return []byte(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(data)), 10) + "\n")
	case t == hive.RegDwordBigEndian && len(data) == 4:
		return []byte(strconv.FormatUint(uint64(binary.BigEndian.Uint32(data)), 10) + "\n")
	case t == hive.RegQword && len(data) == 8:
		return []byte(strconv.FormatUint(binary.LittleEndian.Uint64(data), 10) + "\n")
	}
	return append([]byte{}, data...)
}

// utf16String decodes UTF-16LE registry string data, dropping the
// terminating NUL(s). It fails on odd lengths and unpaired surrogates.
func utf16String(b []byte) (string, bool) {
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c >= 0xD800 && c < 0xDC00 {
			if i+1 >= len(u) || u[i+1] < 0xDC00 || u[i+1] >= 0xE000 {
				return "", false
			}
			i++
		} else if c >= 0xDC00 && c < 0xE000 {
			return "", false
		}
	}
	return string(utf16.Decode(u)), true
}

func utf16Bytes(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// Parse turns written file content into value data of type t. It fails
// with EINVAL when the text is not valid for the type.
func Parse(t uint32, content []byte) ([]byte, error) {
	switch {
	case isString(t):
		s, err := text(content)
		if err != nil {
			return nil, err
		}
		s = strings.TrimSuffix(s, "\n")
		return append(utf16Bytes(s), 0, 0), nil
	case t == hive.RegMultiSz:
		s, err := text(content)
		if err != nil {
			return nil, err
		}
		s = strings.TrimSuffix(s, "\n")
		var b []byte
		for _, line := range strings.Split(s, "\n") {
			// an empty string would end the list early: Windows' regedit
			// drops them too
			if line != "" {
				b = append(append(b, utf16Bytes(line)...), 0, 0)
			}
		}
		return append(b, 0, 0), nil
	case t == hive.RegDword, t == hive.RegDwordBigEndian:
		v, err := number(content, 32)
		if err != nil {
			return nil, err
		}
		b := make([]byte, 4)
		if t == hive.RegDword {
			binary.LittleEndian.PutUint32(b, uint32(v))
		} else {
			binary.BigEndian.PutUint32(b, uint32(v))
		}
		return b, nil
	case t == hive.RegQword:
		v, err := number(content, 64)
		if err != nil {
			return nil, err
		}
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, v)
		return b, nil
	}
	return append([]byte{}, content...), nil
}

func text(b []byte) (string, error) {
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return "", fmt.Errorf("string value: not UTF-8 text: %w", syscall.EINVAL)
	}
	return string(b), nil
}

// number reads decimal or 0x-hex, with an optional trailing newline.
func number(b []byte, bits int) (uint64, error) {
	s := strings.TrimSpace(string(b))
	base := 10
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		s, base = h, 16
	}
	v, err := strconv.ParseUint(s, base, bits)
	if err != nil {
		return 0, fmt.Errorf("number %q for a %d-bit value: %w", strings.TrimSpace(string(b)), bits, syscall.EINVAL)
	}
	return v, nil
}
