package vmconfig

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyTo copies testdata files into a fresh folder.
func copyTo(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func touch(t *testing.T, p string, content []byte) {
	t.Helper()
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, p string, opts Options) *VM {
	t.Helper()
	vm, _, err := Load(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestVMwareState: the .vmss the .vmx names makes it suspended; without
// it the VM is off; a .lck folder or a lone .vmem says it runs; a
// snapshot's .vmsn never counts.
func TestVMwareState(t *testing.T) {
	dir := copyTo(t, "web01.vmx", "web01.vmsd")
	vmx := filepath.Join(dir, "web01.vmx")
	touch(t, filepath.Join(dir, "web01-Snapshot2.vmsn"), []byte("snapshot memory"))
	if vm := load(t, vmx, Options{}); vm.State != StateOff || vm.StateFile != "" {
		t.Errorf("without a .vmss: %s %q", vm.State, vm.StateFile)
	}
	vmss := filepath.Join(dir, "web01-d8b1a0c4.vmss")
	touch(t, vmss, []byte("suspend state"))
	vm := load(t, vmx, Options{})
	if vm.State != StateSuspended || vm.StateFile != vmss {
		t.Errorf("with the .vmss: %s %q", vm.State, vm.StateFile)
	}
	// the disks are absolute, and the snapshot's base joins the current disk
	var paths []string
	for _, d := range vm.Disks {
		paths = append(paths, strings.TrimPrefix(d.Path, dir+"/")+"@"+d.Snapshot)
	}
	if got := strings.Join(paths, ","); got != "web01-000001.vmdk@,data.vmdk@,web01.vmdk@2" {
		t.Errorf("disks = %s", got)
	}
	os.Remove(vmss)
	if err := os.Mkdir(vmx+".lck", 0o755); err != nil {
		t.Fatal(err)
	}
	if vm := load(t, vmx, Options{}); vm.State != StateRunning || vm.Lock != vmx+".lck" {
		t.Errorf("with a .lck: %s %q", vm.State, vm.Lock)
	}
	os.Remove(vmx + ".lck")
	if err := os.Mkdir(filepath.Join(dir, "data.vmdk.lck"), 0o755); err != nil {
		t.Fatal(err)
	}
	if vm := load(t, vmx, Options{}); vm.State != StateRunning || !strings.HasSuffix(vm.Lock, "data.vmdk.lck") {
		t.Errorf("with a disk's .lck: %s %q", vm.State, vm.Lock)
	}
	os.Remove(filepath.Join(dir, "data.vmdk.lck"))
	touch(t, filepath.Join(dir, "web01-Snapshot2.vmem"), nil)
	if vm := load(t, vmx, Options{}); vm.State != StateOff {
		t.Errorf("a snapshot's .vmem made it %s", vm.State)
	}
	touch(t, filepath.Join(dir, "web01-d8b1a0c4.vmem"), nil)
	if vm := load(t, vmx, Options{}); vm.State != StateRunning {
		t.Errorf("a .vmem without .vmss: %s", vm.State)
	}
}

// TestVBoxState: Machine stateFile makes it saved while the file exists;
// a snapshot's own .sav does not.
func TestVBoxState(t *testing.T) {
	dir := copyTo(t, "db01.vbox")
	p := filepath.Join(dir, "db01.vbox")
	os.Mkdir(filepath.Join(dir, "Snapshots"), 0o755)
	touch(t, filepath.Join(dir, "Snapshots", "{a1b2c3d4-0000-4000-8000-000000000002}.sav"), []byte("snapshot"))
	if vm := load(t, p, Options{}); vm.State != StateOff || vm.StateFile != "" {
		t.Errorf("without the machine's .sav: %s %q", vm.State, vm.StateFile)
	}
	sav := filepath.Join(dir, "Snapshots", "2026-03-01T10-00-00-123456789Z.sav")
	touch(t, sav, []byte("saved state"))
	vm := load(t, p, Options{})
	if vm.State != StateSaved || vm.StateFile != sav {
		t.Errorf("with it: %s %q", vm.State, vm.StateFile)
	}
	if vm.Disks[0].Path != filepath.Join(dir, "Snapshots", "{3c72ec80-dc73-4448-a63e-97970cdd87e5}.vdi") {
		t.Errorf("disk path = %s", vm.Disks[0].Path)
	}
}

// TestLibvirtState: NAME.save with libvirt's header, beside the XML or in
// the save folder, is a managed save; a file without it is not.
func TestLibvirtState(t *testing.T) {
	dir := copyTo(t, "app01.xml")
	p := filepath.Join(dir, "app01.xml")
	saveDir := t.TempDir()
	opts := Options{LibvirtSaveDirs: []string{saveDir}}
	touch(t, filepath.Join(saveDir, "app01.save"), []byte("not a save"))
	if vm := load(t, p, opts); vm.State != StateOff {
		t.Errorf("a file without the header: %s", vm.State)
	}
	touch(t, filepath.Join(saveDir, "app01.save"), append([]byte("LibvirtQemudSave"), make([]byte, 64)...))
	if vm := load(t, p, opts); vm.State != StateSaved || vm.StateFile != filepath.Join(saveDir, "app01.save") {
		t.Errorf("managed save: %s %q", vm.State, vm.StateFile)
	}
	// a status file says running
	b, _ := os.ReadFile(p)
	i := bytes.Index(b, []byte("<domain"))
	st := filepath.Join(dir, "status.xml")
	touch(t, st, append(append([]byte("<domstatus state='running' reason='booted' pid='4242'>\n"), b[i:]...), []byte("</domstatus>\n")...))
	if vm := load(t, st, Options{LibvirtSaveDirs: []string{}}); vm.State != StateRunning || vm.Name != "app01" {
		t.Errorf("status file: %s %s", vm.State, vm.Name)
	}
}

// TestOVA: GNU tar's archive is indexed in place: the OVF first, each
// member's bytes where the index says.
func TestOVA(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar not installed")
	}
	dir := copyTo(t, "ttylinux-pc_i486-16.1.ovf")
	disk := bytes.Repeat([]byte("disk bytes "), 100000)
	touch(t, filepath.Join(dir, "ttylinux-pc_i486-16.1-disk1.vmdk"), disk)
	touch(t, filepath.Join(dir, "ttylinux-pc_i486-16.1.mf"), []byte("SHA256(x)= 00\n"))
	ova := filepath.Join(t.TempDir(), "tty.ova")
	cmd := exec.Command("tar", "--format=ustar", "-cf", ova, "ttylinux-pc_i486-16.1.ovf", "ttylinux-pc_i486-16.1.mf", "ttylinux-pc_i486-16.1-disk1.vmdk")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	vm, o, err := Load(ova, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "ttylinux-pc_i486-16.1" || o.Descriptor != "ttylinux-pc_i486-16.1.ovf" || len(o.Members) != 3 {
		t.Fatalf("OVA = %s %s", vm.Name, js(o))
	}
	m, ok := o.Member(vm.Disks[0].Path)
	if !ok || m.Size != int64(len(disk)) {
		t.Fatalf("disk member = %+v %v", m, ok)
	}
	f, _ := os.Open(ova)
	defer f.Close()
	got := make([]byte, m.Size)
	if _, err := f.ReadAt(got, m.Offset); err != nil || !bytes.Equal(got, disk) {
		t.Errorf("the member's bytes are not at offset %d", m.Offset)
	}
	// the descriptor must come first
	cmd = exec.Command("tar", "--format=ustar", "-cf", ova, "ttylinux-pc_i486-16.1-disk1.vmdk", "ttylinux-pc_i486-16.1.ovf")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	b, _ := os.ReadFile(ova)
	if Sniff(b[:8192]) != "" {
		t.Errorf("a tar starting with the disk was taken for an OVA")
	}
}
