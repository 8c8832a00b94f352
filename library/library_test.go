package library

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestList: images by content, folders kept, text files, sidecars and the
// extent files of a flat VMDK hidden.
func TestList(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	raw := make([]byte, 2<<20)
	raw[510], raw[511] = 0x55, 0xAA
	os.WriteFile(filepath.Join(dir, "disk.raw"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(dir, "garbage.vhdx"), make([]byte, 1<<20), 0o644)
	os.WriteFile(filepath.Join(dir, "readme.IMG"), []byte("not a disk\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "disk.raw.offvm-undo"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden.raw"), raw, 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	testutil.Run(t, "qemu-img", "convert", "-O", "vmdk", "-o", "subformat=monolithicFlat", filepath.Join(dir, "disk.raw"), filepath.Join(dir, "flat.vmdk"))
	testutil.Run(t, "qemu-img", "convert", "-O", "qcow2", filepath.Join(dir, "disk.raw"), filepath.Join(dir, "sub", "deep.qcow2"))
	ents, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name+":"+e.Format)
	}
	if s := strings.Join(got, ","); s != "disk.raw:raw,flat.vmdk:vmdk,garbage.vhdx:,readme.IMG:,sub:" {
		t.Errorf("List = %s; want the raw image, the VMDK descriptor (not its flat extent), the files named as images (no format) and the folder", s)
	}
	all, err := Walk(dir)
	if err != nil || len(all) != 5 || all[4].Format != "qcow2" {
		t.Errorf("Walk = %+v, %v", all, err)
	}
	one, err := Walk(filepath.Join(dir, "sub", "deep.qcow2"))
	if err != nil || len(one) != 1 {
		t.Errorf("Walk of one image = %+v, %v", one, err)
	}
	if _, err := Walk(filepath.Join(dir, "notes.txt")); err == nil {
		t.Errorf("Walk of a text file succeeded")
	}
}

// TestParents: the base of a qcow2 child is a parent; the child is not.
func TestParents(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "16M")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", filepath.Join(dir, "child.qcow2"))
	p := Parents(dir)
	if !p[filepath.Join(dir, "base.qcow2")] || p[filepath.Join(dir, "child.qcow2")] || len(p) != 1 {
		t.Errorf("Parents = %v", p)
	}
	if ParentReason(filepath.Join(dir, "base.qcow2")) == "" || ParentReason(filepath.Join(dir, "child.qcow2")) != "" {
		t.Errorf("ParentReason misjudges base or child")
	}
}
