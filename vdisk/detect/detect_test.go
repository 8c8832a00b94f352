package detect

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// rawDisk writes a 4 MiB raw disk with an MBR signature and a pattern.
func rawDisk(t *testing.T, path string) []byte {
	t.Helper()
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	b[510], b[511] = 0x55, 0xAA
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFormatsByContent: every format qemu-img makes is recognised by its
// content whatever its name, and reads back the raw disk.
func TestFormatsByContent(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	want := rawDisk(t, filepath.Join(dir, "base.raw"))
	for _, c := range []struct{ fmt, opts, name string }{
		{"qcow2", "", "a.bin"}, {"vpc", "subformat=dynamic,force_size=on", "b.dat"},
		{"vhdx", "", "c"}, {"vmdk", "", "d.img"},
	} {
		p := filepath.Join(dir, c.name)
		args := []string{"convert", "-O", c.fmt}
		if c.opts != "" {
			args = append(args, "-o", c.opts)
		}
		testutil.Run(t, "qemu-img", append(args, filepath.Join(dir, "base.raw"), p)...)
		name, err := Probe(p)
		if err != nil || name == "" || name == "raw" {
			t.Errorf("%s (%s): probed as %q, %v", c.name, c.fmt, name, err)
			continue
		}
		d, err := Open(p, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got := make([]byte, len(want))
		if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s (%s): content differs from the raw disk (%v)", c.name, c.fmt, err)
		}
		d.Close()
	}
}

// TestChains: a qcow2 chain over a raw base reads through; a chain made
// to loop with `qemu-img rebase -u` and a missing backing file are refused
// with errors naming the files.
func TestChains(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	want := rawDisk(t, filepath.Join(dir, "base.raw"))
	a, b := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.qcow2")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", a)
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
	d, err := Open(b, Options{})
	if err != nil {
		t.Fatalf("open chain: %v", err)
	}
	got := make([]byte, len(want))
	if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Errorf("chain reads differ from the base (%v)", err)
	}
	if d.Info().Parent == "" {
		t.Errorf("Info().Parent is empty for a child")
	}
	d.Close()

	testutil.Run(t, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a)
	if _, err := Open(b, Options{}); err == nil || !errors.Is(err, vdisk.ErrCorrupt) {
		t.Errorf("a looping chain opened: %v", err)
	}
	os.Remove(a)
	_, err = Open(b, Options{})
	if !errors.Is(err, vdisk.ErrParentNotFound) || !bytes.Contains([]byte(err.Error()), []byte("a.qcow2")) {
		t.Errorf("missing backing file: %v", err)
	}
}

func TestProbeNotImage(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{"text": []byte("hello\n"), "zeros": make([]byte, 1<<20)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if f, err := Probe(p); err != nil || f != "" {
			t.Errorf("%s probed as %q (%v), want not an image", name, f, err)
		}
	}
}
