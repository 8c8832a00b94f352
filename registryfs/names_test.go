package registryfs

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/offvm/offvm/registry/hive"
)

func TestNames(t *testing.T) {
	cases := []struct {
		name, file string
		value      bool
	}{
		{"", "@", true},
		{"@", "%40", true},
		{"a/b", "a%2Fb", false},
		{"50%", "50%25", true},
		{"zero\x00key", "zero%00key", false},
		{"abcd_äöüß", "abcd_äöüß", false},
		{"plain", "plain", true},
		{".", "%2E", false},
		{"..", "%2E%2E", true},
	}
	for _, c := range cases {
		if got := EncodeName(c.name, c.value); got != c.file {
			t.Errorf("EncodeName(%q) = %q, want %q", c.name, got, c.file)
		}
		if got := DecodeName(c.file, c.value); got != c.name {
			t.Errorf("DecodeName(%q) = %q, want %q", c.file, got, c.name)
		}
	}
}

func TestShadowed(t *testing.T) {
	for name, file := range map[string]string{"0": "%30", "Ünï": "%C3%9Cnï", "@": "%40", "": "@", "a/b": "%61%2Fb"} {
		if got := EncodeShadowed(name); got != file {
			t.Errorf("EncodeShadowed(%q) = %q, want %q", name, got, file)
		}
		if got := DecodeName(file, true); got != name {
			t.Errorf("DecodeName(%q) = %q, want %q", file, got, name)
		}
	}
	if Canonical("%30", true) || !Canonical("0", true) || !Canonical("%2F", false) {
		t.Errorf("Canonical misjudges escapes")
	}
}

func TestContent(t *testing.T) {
	cases := []struct {
		typ     uint32
		written string
		data    []byte
		shown   string
	}{
		{hive.RegSz, "hello\n", []byte{'h', 0, 'e', 0, 'l', 0, 'l', 0, 'o', 0, 0, 0}, "hello\n"},
		{hive.RegSz, "no newline", append(utf16Bytes("no newline"), 0, 0), "no newline\n"},
		{hive.RegDword, "0x10\n", []byte{16, 0, 0, 0}, "16\n"},
		{hive.RegDword, "4294967295", []byte{255, 255, 255, 255}, "4294967295\n"},
		{hive.RegDwordBigEndian, "1", []byte{0, 0, 0, 1}, "1\n"},
		{hive.RegQword, "18446744073709551615\n", bytes.Repeat([]byte{255}, 8), "18446744073709551615\n"},
		{hive.RegMultiSz, "a\nb\n", append(append(append(utf16Bytes("a"), 0, 0), append(utf16Bytes("b"), 0, 0)...), 0, 0), "a\nb\n"},
		{hive.RegBinary, "\x00\x01raw", []byte("\x00\x01raw"), "\x00\x01raw"},
	}
	for _, c := range cases {
		data, err := Parse(c.typ, []byte(c.written))
		if err != nil || !bytes.Equal(data, c.data) {
			t.Errorf("Parse(%s, %q) = %v, %v; want %v", TypeName(c.typ), c.written, data, err, c.data)
		}
		if got := string(Render(c.typ, c.data)); got != c.shown {
			t.Errorf("Render(%s, %v) = %q, want %q", TypeName(c.typ), c.data, got, c.shown)
		}
	}
	for _, bad := range []struct {
		typ uint32
		s   string
	}{{hive.RegDword, "4294967296"}, {hive.RegDword, "-1"}, {hive.RegQword, "abc"}, {hive.RegSz, "\xff\xfe"}} {
		if _, err := Parse(bad.typ, []byte(bad.s)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Parse(%s, %q): %v, want EINVAL", TypeName(bad.typ), bad.s, err)
		}
	}
	// data that does not decode as its type reads raw
	if got := Render(hive.RegDword, []byte{1, 2}); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("a 2-byte DWORD renders %v, want its raw bytes", got)
	}
	if got := Render(hive.RegSz, []byte{1, 2, 3}); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("an odd-length string renders %v, want its raw bytes", got)
	}
	for _, tn := range []string{"REG_SZ", "reg_dword", "0x1234"} {
		if _, err := ParseType(tn); err != nil {
			t.Errorf("ParseType(%q): %v", tn, err)
		}
	}
}

func FuzzContent(f *testing.F) {
	f.Add(uint32(hive.RegSz), []byte("text\n"))
	f.Add(uint32(hive.RegMultiSz), []byte("a\nb\n"))
	f.Add(uint32(hive.RegDword), []byte("0x10"))
	f.Fuzz(func(t *testing.T, typ uint32, b []byte) {
		data, err := Parse(typ, b)
		if err != nil {
			return
		}
		// what is written reads back in the same form, up to the one
		// trailing newline the contract drops
		shown := Render(typ, data)
		again, err := Parse(typ, shown)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("type %d: %q → %v → %q → %v (%v)", typ, b, data, shown, again, err)
		}
	})
}

func FuzzNames(f *testing.F) {
	f.Add("a/b%c\x00", true)
	f.Fuzz(func(t *testing.T, name string, value bool) {
		if got := DecodeName(EncodeName(name, value), value); got != name {
			t.Fatalf("%q round-trips to %q", name, got)
		}
		if got := DecodeName(EncodeShadowed(name), true); got != name {
			t.Fatalf("shadowed %q round-trips to %q", name, got)
		}
	})
}
