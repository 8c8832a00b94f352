package library

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vmconfig"
)

func write(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "vmconfig", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestScanVMs: configurations are found by content under any name, deep
// in the library; a disk's VM and sleep reason follow the state file.
func TestScanVMs(t *testing.T) {
	lib := t.TempDir()
	write(t, filepath.Join(lib, "a", "b", "settings.cfg"), testdata(t, "web01.vmx"))   // not named .vmx
	write(t, filepath.Join(lib, "a", "b", "settings.vmsd"), testdata(t, "web01.vmsd")) // VMware names it after the .vmx
	write(t, filepath.Join(lib, "db", "db01.vbox"), testdata(t, "db01.vbox"))
	write(t, filepath.Join(lib, "notes.xml"), []byte("<notes>hello</notes>"))
	write(t, filepath.Join(lib, "broken.vbox"), []byte(`<?xml version="1.0"?><VirtualBox><Machine name="x">`))
	x := ScanVMs(lib, nil, vmconfig.Options{})
	if len(x.VMs) != 2 || len(x.Problems) != 1 || !strings.Contains(x.Problems[0], "broken.vbox") {
		t.Fatalf("VMs %d, problems %v", len(x.VMs), x.Problems)
	}
	leaf := filepath.Join(lib, "a", "b", "web01-000001.vmdk")
	vi, ok := x.For(leaf)
	if !ok || vi.Name != "web01" || *vi.State != "off" || vi.Disk.Role != "current" || x.SleepReason(leaf) != "" {
		t.Fatalf("For(leaf) = %+v %v", vi, ok)
	}
	if vi, ok := x.For(filepath.Join(lib, "a", "b", "web01.vmdk")); !ok || vi.Disk.Role != "snapshot" {
		t.Errorf("the snapshot's base: %+v %v", vi, ok)
	}
	write(t, filepath.Join(lib, "a", "b", "web01-d8b1a0c4.vmss"), []byte("state"))
	x = ScanVMs(lib, nil, vmconfig.Options{})
	if r := x.SleepReason(leaf); !strings.Contains(r, "web01-d8b1a0c4.vmss") || !strings.Contains(r, "suspended") {
		t.Errorf("SleepReason = %q", r)
	}
	if len(x.Sleeping()) != 1 {
		t.Errorf("Sleeping = %d", len(x.Sleeping()))
	}
	// a disk beside the unreadable configuration may belong to it
	if r := x.SleepReason(filepath.Join(lib, "disk.vhd")); !strings.Contains(r, "broken.vbox") {
		t.Errorf("beside a broken configuration: %q", r)
	}
	// the snapshot folder of a VirtualBox VM is searched from its disk
	if x.SleepReason(filepath.Join(lib, "db", "Snapshots", "{3c72ec80-dc73-4448-a63e-97970cdd87e5}.vdi")) != "" {
		t.Errorf("db01 sleeps without its .sav")
	}
}

// makeOVA tars the ttylinux descriptor and a disk (GNU tar, OVF first).
func makeOVA(t testing.TB, dir string, disk []byte) string {
	t.Helper()
	testutil.RequireTool(t, "tar", "tar")
	pkg := t.TempDir()
	write(t, filepath.Join(pkg, "ttylinux-pc_i486-16.1.ovf"), testdata(t, "ttylinux-pc_i486-16.1.ovf"))
	write(t, filepath.Join(pkg, "ttylinux-pc_i486-16.1-disk1.vmdk"), disk)
	ova := filepath.Join(dir, "tty.ova")
	if out, err := exec.Command("tar", "--format=ustar", "-C", pkg, "-cf", ova, "ttylinux-pc_i486-16.1.ovf", "ttylinux-pc_i486-16.1-disk1.vmdk").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	return ova
}

// TestOVAFolder: an OVA lists as a folder, its disk as an entry inside,
// reached by OVAOpenFile as a read-only window on the tar, read by many
// goroutines at once.
func TestOVAFolder(t *testing.T) {
	lib := t.TempDir()
	disk := make([]byte, 3<<20+123)
	for i := range disk {
		disk[i] = byte(i * 7)
	}
	ova := makeOVA(t, lib, disk)
	ents, err := List(lib)
	if err != nil || len(ents) != 1 || !ents[0].IsDir || ents[0].Format != "ova" {
		t.Fatalf("List(lib) = %+v %v", ents, err)
	}
	inner, err := List(ova)
	member := filepath.Join(ova, "ttylinux-pc_i486-16.1-disk1.vmdk")
	if err != nil || len(inner) != 1 || inner[0].Path != member {
		t.Fatalf("List(ova) = %+v %v", inner, err)
	}
	if all, _ := Walk(lib); len(all) != 1 || all[0].Path != member {
		t.Errorf("Walk = %+v", all)
	}
	if _, _, ok := InOVA(member); !ok {
		t.Fatalf("InOVA(%s) = false", member)
	}
	if _, err := OVAOpenFile(member, true); err == nil {
		t.Errorf("a writable open of an OVA member succeeded")
	}
	f, err := OVAOpenFile(member, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, _ := f.Size(); n != int64(len(disk)) {
		t.Fatalf("Size = %d", n)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Errorf("WriteAt succeeded")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				off := int64((g*7919 + i*104729) % len(disk))
				buf := make([]byte, 65536)
				n, err := f.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:n], disk[off:off+int64(n)]) {
					errs <- fmt.Errorf("bytes at %d differ", off)
					return
				}
				if _, err := OVAIndex(ova); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// a tar whose descriptor is broken is a broken image, not a folder
	bad := filepath.Join(lib, "bad.ova")
	b, _ := os.ReadFile(ova)
	copy(b[512:], "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\"><broken")
	write(t, bad, b)
	if OVAError(bad) == nil {
		t.Errorf("OVAError(bad) = nil")
	}
	ents, _ = List(lib)
	if len(ents) != 2 || ents[0].Name != "bad.ova" || ents[0].IsDir {
		t.Errorf("List with a broken OVA = %+v", ents)
	}
}

// BenchmarkScanVMs: the cost of finding VMs in a library of 500 files.
func BenchmarkScanVMs(b *testing.B) {
	lib := b.TempDir()
	for i := 0; i < 500; i++ {
		write(b, filepath.Join(lib, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%03d.bin", i)), make([]byte, 16384))
	}
	write(b, filepath.Join(lib, "web01.vmx"), testdata(b, "web01.vmx"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if x := ScanVMs(lib, nil, vmconfig.Options{}); len(x.VMs) != 1 {
			b.Fatal(len(x.VMs))
		}
	}
}

// TestChainBases: a libvirt domain names the top of a qcow2 backing
// chain; its managed save protects the backing file too, as a base.
func TestChainBases(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	lib := t.TempDir()
	base, top := filepath.Join(lib, "base.qcow2"), filepath.Join(lib, "top.qcow2")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "16M")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
	xml := strings.Replace(string(testdata(t, "app01.xml")), "/var/lib/libvirt/images/app01.qcow2", top, 1)
	write(t, filepath.Join(lib, "app01.xml"), []byte(xml))
	x := ScanVMs(lib, nil, vmconfig.Options{LibvirtSaveDirs: []string{}})
	vi, ok := x.For(base)
	if !ok || vi.Disk.Role != "snapshot" || x.SleepReason(base) != "" {
		t.Fatalf("the base of a VM that is off: %+v %v %q", vi, ok, x.SleepReason(base))
	}
	write(t, filepath.Join(lib, "app01.save"), append([]byte("LibvirtQemudSave"), make([]byte, 64)...))
	x = ScanVMs(lib, nil, vmconfig.Options{LibvirtSaveDirs: []string{}})
	if !strings.Contains(x.SleepReason(base), "app01.save") || !strings.Contains(x.SleepReason(top), "app01.save") {
		t.Errorf("managed save: base %q, top %q", x.SleepReason(base), x.SleepReason(top))
	}
}
