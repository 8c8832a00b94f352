package vdisk

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestResolveParent(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "child.vhd")
	parent := filepath.Join(dir, "parent.vhd")
	os.WriteFile(child, nil, 0o644)
	os.WriteFile(parent, nil, 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	cases := []struct {
		name  string
		cands []string
		ok    bool
	}{
		{"relative", []string{"parent.vhd"}, true},
		{"absolute", []string{parent}, true},
		{"windows relative", []string{`.\parent.vhd`}, true},
		{"windows absolute elsewhere: base name beside the child", []string{`C:\VMs\Hyper-V\parent.vhd`}, true},
		{"first missing, second found", []string{"nope.vhd", "parent.vhd"}, true},
		{"missing", []string{"nope.vhd"}, false},
		{"a directory is no parent", []string{"sub"}, false},
		{"the child itself is no parent", []string{"child.vhd"}, false},
	}
	for _, c := range cases {
		got, ok := ResolveParent(child, c.cands...)
		if ok != c.ok || (ok && got != parent) {
			t.Errorf("%s: %q, %v", c.name, got, ok)
		}
	}
}

func TestMemFile(t *testing.T) {
	m := NewMemFile("m", []byte("hello"))
	if _, err := m.WriteAt([]byte("XY"), 8); err != nil {
		t.Fatal(err)
	}
	if sz, _ := m.Size(); sz != 10 {
		t.Errorf("size %d after a write past the end, want 10", sz)
	}
	b := make([]byte, 4)
	if n, err := m.ReadAt(b, 8); n != 2 || err != io.EOF || string(b[:2]) != "XY" {
		t.Errorf("ReadAt at the end: %d %v %q", n, err, b[:n])
	}
	m.Truncate(3)
	if string(m.Bytes()) != "hel" {
		t.Errorf("after Truncate: %q", m.Bytes())
	}
	if !IsZero(make([]byte, 13)) || IsZero([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("IsZero is wrong")
	}
	if CheckRange(0, 10, 10) != nil || CheckRange(1, 10, 10) == nil || CheckRange(-1, 1, 10) == nil {
		t.Errorf("CheckRange is wrong")
	}
}
