package names

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestRules(t *testing.T) {
	long := strings.Repeat("a", 256)
	longUnits := strings.Repeat("é", 256) // 256 UTF-16 units, 512 bytes
	cases := []struct {
		name           string
		windows, posix syscall.Errno // 0: accepted
	}{
		{"notepad.exe", 0, 0},
		{"Program Files", 0, 0},
		{"del\x7fete", 0, 0}, // DEL is a valid Windows name character
		{"", syscall.EINVAL, syscall.EINVAL},
		{".", syscall.EINVAL, syscall.EINVAL},
		{"..", syscall.EINVAL, syscall.EINVAL},
		{"a/b", syscall.EINVAL, syscall.EINVAL},
		{"nul\x00", syscall.EINVAL, syscall.EINVAL},
		{"a\\b", syscall.EINVAL, 0},
		{"a:b", syscall.EINVAL, 0},
		{"a*b", syscall.EINVAL, 0},
		{"a?b", syscall.EINVAL, 0},
		{`a"b`, syscall.EINVAL, 0},
		{"a<b", syscall.EINVAL, 0},
		{"a>b", syscall.EINVAL, 0},
		{"a|b", syscall.EINVAL, 0},
		{"tab\there", syscall.EINVAL, 0},
		{"trailing.", syscall.EINVAL, 0},
		{"trailing ", syscall.EINVAL, 0},
		{"\xff\xfe", syscall.EINVAL, 0},
		{long, syscall.ENAMETOOLONG, syscall.ENAMETOOLONG},
		{strings.Repeat("a", 255), 0, 0},
		{longUnits, syscall.ENAMETOOLONG, syscall.ENAMETOOLONG},
		{strings.Repeat("é", 255), 0, syscall.ENAMETOOLONG},
		{"CON", 0, 0}, // NTFS holds device names; only the patcher refuses them
	}
	for _, c := range cases {
		for _, rule := range []struct {
			what string
			fn   func(string) error
			want syscall.Errno
		}{{"Windows", Windows, c.windows}, {"POSIX", POSIX, c.posix}} {
			err := rule.fn(c.name)
			if rule.want == 0 {
				if err != nil {
					t.Errorf("%s(%q) = %v, want accepted", rule.what, c.name, err)
				}
				continue
			}
			if !errors.Is(err, rule.want) {
				t.Errorf("%s(%q) = %v, want %v", rule.what, c.name, err, rule.want)
			}
		}
	}
}

func TestReservedDevice(t *testing.T) {
	for name, want := range map[string]bool{
		"CON": true, "con": true, "Nul.txt": true, "COM1": true, "lpt9.log": true, "AUX.tar.gz": true,
		"COM0": false, "COM10": false, "CONSOLE": false, "console.txt": false, "prn1": false, "": false,
	} {
		if got := ReservedDevice(name); got != want {
			t.Errorf("ReservedDevice(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzRules(f *testing.F) {
	for _, s := range []string{"a", "CON.txt", "a:b", "\xff", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, p := Windows(s), POSIX(s)
		if w == nil && p != nil && len(s) <= MaxUnits {
			t.Fatalf("Windows accepts %q but POSIX refuses it: %v", s, p)
		}
		_ = ReservedDevice(s)
	})
}
