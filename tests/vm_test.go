package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// The VM library tests build a library as administrators keep one: VMs
// with their configurations beside their disks, some of them asleep.

// vmx is a VMware Workstation configuration in the shape Workstation 17
// writes it; state is the checkpoint.vmState value.
func vmx(state string) string {
	return `.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "web01"
guestOS = "windows2019srv-64"
numvcpus = "2"
memsize = "4096"
scsi0.virtualDev = "lsisas1068"
scsi0.present = "TRUE"
scsi0:0.fileName = "web01-000001.vmdk"
scsi0:0.present = "TRUE"
scsi0:1.fileName = "data.vmdk"
scsi0:1.present = "TRUE"
sata0.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "/iso/server.iso"
sata0:1.present = "TRUE"
ethernet0.present = "TRUE"
ethernet0.connectionType = "bridged"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:01:02:03"
ethernet0.virtualDev = "vmxnet3"
checkpoint.vmState = "` + state + `"
`
}

const vmsd = `.encoding = "UTF-8"
snapshot.lastUID = "1"
snapshot.current = "1"
snapshot0.uid = "1"
snapshot0.filename = "web01-Snapshot1.vmsn"
snapshot0.displayName = "before patch day"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "web01.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "1"
`

// vbox is a VirtualBox 7 machine saved to Snapshots/saved.sav.
const vbox = `<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{5d8a1e3c-77b2-4c1e-9a0b-2f4c6d8e0a12}" name="db01" OSType="Debian_64" snapshotFolder="Snapshots" stateFile="Snapshots/saved.sav">
    <MediaRegistry>
      <HardDisks>
        <HardDisk uuid="{0898f36f-01c3-4b43-8aeb-36ba7adaef95}" location="db01.vhd" format="VHD" type="Normal"/>
      </HardDisks>
    </MediaRegistry>
    <Hardware>
      <CPU count="1"/>
      <Memory RAMSize="1024"/>
      <Network>
        <Adapter slot="0" enabled="true" MACAddress="0800277AA2FC" type="82540EM"><NAT/></Adapter>
      </Network>
      <StorageControllers>
        <StorageController name="SATA" type="AHCI" PortCount="1" Bootable="true">
          <AttachedDevice type="HardDisk" port="0" device="0"><Image uuid="{0898f36f-01c3-4b43-8aeb-36ba7adaef95}"/></AttachedDevice>
        </StorageController>
      </StorageControllers>
    </Hardware>
  </Machine>
</VirtualBox>
`

func domainXML(disk string) string {
	return `<domain type='kvm'>
  <name>app01</name>
  <uuid>2f1c1b7e-7d5e-4b4f-9a53-8d7c1c1e2a90</uuid>
  <memory unit='MiB'>512</memory>
  <vcpu placement='static'>3</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='` + disk + `'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`
}

// ovf is a descriptor per DMTF DSP0243 1.1 for one VM with one
// streamOptimized disk of capacity bytes.
func ovf(capacity int64) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="web02-disk1.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>Virtual disks</Info>
    <Disk ovf:capacity="%d" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>Networks</Info><Network ovf:name="VM Network"><Description>VM Network</Description></Network></NetworkSection>
  <VirtualSystem ovf:id="web02">
    <Info>A virtual machine</Info>
    <Name>web02</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware</Info>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>2 virtual CPUs</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>2048 MB</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI Controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Address>00:50:56:aa:bb:02</rasd:Address><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VMXNET3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`, capacity)
}

// vmLibrary builds the library: a suspended VMware VM with a snapshot
// chain and a flat disk, a saved VirtualBox VM, a libvirt domain with a
// managed save, and an OVA. Every disk is a bare FAT16 volume holding
// hello.txt, converted by qemu-img.
func vmLibrary(t *testing.T) (lib string, hello []byte) {
	t.Helper()
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "tar", "tar")
	src := t.TempDir()
	hello = []byte("hello from a sleeping VM\n")
	must(t, os.WriteFile(filepath.Join(src, "hello.txt"), hello, 0o644))
	fat := makeFAT(t, src, 16, 16, "DATA")
	lib = t.TempDir()
	w := filepath.Join(lib, "vmware", "web01")
	v := filepath.Join(lib, "vbox", "db01")
	l := filepath.Join(lib, "libvirt")
	for _, d := range []string{w, filepath.Join(v, "Snapshots"), l, filepath.Join(lib, "templates")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	run(t, "qemu-img", "convert", "-O", "vmdk", fat, filepath.Join(w, "web01.vmdk"))
	// the snapshot's child names its parent by CID, as VMware's -000001.vmdk does
	run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", "web01.vmdk", "-F", "vmdk", filepath.Join(w, "web01-000001.vmdk"))
	run(t, "qemu-img", "convert", "-O", "vmdk", "-o", "subformat=monolithicFlat", fat, filepath.Join(w, "data.vmdk"))
	must(t, os.WriteFile(filepath.Join(w, "web01.vmx"), []byte(vmx("web01-5f2a.vmss")), 0o644))
	must(t, os.WriteFile(filepath.Join(w, "web01.vmsd"), []byte(vmsd), 0o644))
	must(t, os.WriteFile(filepath.Join(w, "web01-Snapshot1.vmsn"), []byte{0xd2, 0xbe, 0xd2, 0xbe}, 0o644))
	must(t, os.WriteFile(filepath.Join(w, "web01-5f2a.vmss"), []byte{0xd2, 0xbe, 0xd2, 0xbe, 8, 0, 0, 0}, 0o644))

	run(t, "qemu-img", "convert", "-O", "vpc", fat, filepath.Join(v, "db01.vhd"))
	must(t, os.WriteFile(filepath.Join(v, "db01.vbox"), []byte(vbox), 0o644))
	must(t, os.WriteFile(filepath.Join(v, "Snapshots", "saved.sav"), []byte("\x7fVirtualBox SavedState V2.0\n"), 0o644))

	qcow := filepath.Join(l, "app01.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", fat, qcow)
	must(t, os.WriteFile(filepath.Join(l, "app01.xml"), []byte(domainXML(qcow)), 0o644))
	// libvirt's managed save starts with virQEMUSaveHeader's magic
	must(t, os.WriteFile(filepath.Join(l, "app01.save"), append([]byte("LibvirtQemudSave"), make([]byte, 80)...), 0o600))

	pkg := t.TempDir()
	run(t, "qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", fat, filepath.Join(pkg, "web02-disk1.vmdk"))
	must(t, os.WriteFile(filepath.Join(pkg, "web02.ovf"), []byte(ovf(16*mib)), 0o644))
	ova := filepath.Join(lib, "templates", "web02.ova")
	run(t, "tar", "--format=ustar", "-C", pkg, "-cf", ova, "web02.ovf", "web02-disk1.vmdk")
	return lib, hello
}

// TestVMLibraryTools: the test library's files are what the real tools
// take them for.
func TestVMLibraryTools(t *testing.T) {
	testutil.RequireTool(t, "virt-xml-validate", "libvirt-clients")
	testutil.RequireTool(t, "xmllint", "libxml2-utils")
	lib, _ := vmLibrary(t)
	run(t, "virt-xml-validate", filepath.Join(lib, "libvirt", "app01.xml"), "domain")
	list := run(t, "tar", "tvf", filepath.Join(lib, "templates", "web02.ova"))
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], "web02.ovf") {
		t.Errorf("tar tvf: the OVF must come first:\n%s", list)
	}
	out := run(t, "qemu-img", "info", "--backing-chain", filepath.Join(lib, "vmware", "web01", "web01-000001.vmdk"))
	if !strings.Contains(out, "backing file: web01.vmdk") {
		t.Errorf("qemu-img does not see the snapshot chain:\n%s", out)
	}
}

type vmInfo struct {
	Path           string  `json:"path"`
	Writable       bool    `json:"writable"`
	ReadOnlyReason *string `json:"read_only_reason"`
	Error          *string `json:"error"`
	VM             *struct {
		Name      string  `json:"name"`
		Kind      string  `json:"kind"`
		State     *string `json:"state"`
		StateFile *string `json:"state_file"`
		CPUs      *int    `json:"cpus"`
		MemoryMiB *int64  `json:"memory_mib"`
		NICs      []struct {
			MAC     *string `json:"mac"`
			Network *string `json:"network"`
		} `json:"nics"`
		Disk struct {
			Controller *string `json:"controller"`
			Slot       *string `json:"slot"`
			Role       string  `json:"role"`
		} `json:"disk"`
		Snapshots []struct {
			Name string `json:"name"`
		} `json:"snapshots"`
	} `json:"vm"`
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// TestVMInventory: ls names each disk's VM, its hardware and its place,
// and a disk whose VM sleeps is read-only with the VM and the state file
// named.
func TestVMInventory(t *testing.T) {
	lib, _ := vmLibrary(t)
	var infos []vmInfo
	if err := json.Unmarshal([]byte(mustOffvm(t, "ls", "--json", lib)), &infos); err != nil {
		t.Fatal(err)
	}
	byName := map[string]vmInfo{}
	for _, in := range infos {
		rel, _ := filepath.Rel(lib, in.Path)
		byName[rel] = in
	}
	tests := []struct {
		disk, vm, state, role, controller, slot, reason string
		cpus                                            int
		mem                                             int64
		mac                                             string
	}{
		{"vmware/web01/web01-000001.vmdk", "web01", "suspended", "current", "scsi0", "0:0", "web01-5f2a.vmss", 2, 4096, "00:50:56:01:02:03"},
		{"vmware/web01/data.vmdk", "web01", "suspended", "current", "scsi0", "0:1", "web01-5f2a.vmss", 2, 4096, "00:50:56:01:02:03"},
		{"vmware/web01/web01.vmdk", "web01", "suspended", "snapshot", "scsi0", "0:0", "web01-5f2a.vmss", 2, 4096, "00:50:56:01:02:03"},
		{"vbox/db01/db01.vhd", "db01", "saved", "current", "SATA", "port 0 device 0", "Snapshots/saved.sav", 1, 1024, "08:00:27:7a:a2:fc"},
		{"libvirt/app01.qcow2", "app01", "saved", "current", "virtio", "vda", "app01.save", 3, 512, "52:54:00:6b:3c:58"},
		{"templates/web02.ova/web02-disk1.vmdk", "web02", "<null>", "current", "SCSI Controller 0", "0", "OVA", 2, 2048, "00:50:56:aa:bb:02"},
	}
	for _, tc := range tests {
		in, ok := byName[tc.disk]
		if !ok {
			t.Errorf("%s: not listed (have %v)", tc.disk, vmNames(byName))
			continue
		}
		if in.Error != nil {
			t.Errorf("%s: %s", tc.disk, *in.Error)
		}
		if in.Writable || !strings.Contains(str(in.ReadOnlyReason), tc.reason) {
			t.Errorf("%s: writable %v, reason %q; want read-only naming %s", tc.disk, in.Writable, str(in.ReadOnlyReason), tc.reason)
		}
		vm := in.VM
		if vm == nil {
			t.Errorf("%s: no vm", tc.disk)
			continue
		}
		got := fmt.Sprintf("%s %s %s %s %s", vm.Name, str(vm.State), vm.Disk.Role, str(vm.Disk.Controller), str(vm.Disk.Slot))
		if want := fmt.Sprintf("%s %s %s %s %s", tc.vm, tc.state, tc.role, tc.controller, tc.slot); got != want {
			t.Errorf("%s: vm = %s, want %s", tc.disk, got, want)
		}
		if vm.CPUs == nil || *vm.CPUs != tc.cpus || vm.MemoryMiB == nil || *vm.MemoryMiB != tc.mem || len(vm.NICs) != 1 || str(vm.NICs[0].MAC) != tc.mac {
			t.Errorf("%s: hardware %+v", tc.disk, vm)
		}
	}
	if vm := byName["vmware/web01/web01-000001.vmdk"].VM; vm == nil || len(vm.Snapshots) != 1 || vm.Snapshots[0].Name != "before patch day" {
		t.Errorf("web01's snapshots are not listed")
	}
	// the OVA file itself is a package, never a raw disk to write
	ova := filepath.Join(lib, "templates", "web02.ova")
	if r := runOffvm(t, "inspect", ova); r.code != 1 || !strings.Contains(r.out+r.err, "is an OVA package") {
		t.Errorf("inspect of the .ova: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if !strings.Contains(mustOffvm(t, "ls", lib), "web01 (suspended)") {
		t.Errorf("ls has no VM column with web01 (suspended)")
	}
	// report flags the sleeping VMs' disks: nobody may believe they were patched
	rep := mustOffvm(t, "report", lib)
	for _, d := range []string{"web01-000001.vmdk", "db01.vhd", "app01.qcow2"} {
		found := false
		for _, line := range strings.Split(rep, "\n") {
			if strings.Contains(line, d) && strings.Contains(line, "cannot be patched") {
				found = true
			}
		}
		if !found {
			t.Errorf("report does not flag %s:\n%s", d, rep)
		}
	}
}

func vmNames(m map[string]vmInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func isEROFS(err error) bool { return errors.Is(err, syscall.EROFS) }

// TestSleepingVMReadOnly: through the mount, writing a sleeping VM's disk
// fails with EROFS (the reason in info.json); the OVA's disk reads in
// place and refuses writes; once the VMware state file is gone, the
// current disk takes the write (checked by qemu-img and fsck.fat) while
// the snapshot's base stays read-only.
func TestSleepingVMReadOnly(t *testing.T) {
	testutil.RequireTool(t, "fsck.fat", "dosfstools")
	lib, hello := vmLibrary(t)
	mnt := mountLib(t, lib)
	for _, d := range []string{"vmware/web01/web01-000001.vmdk", "vmware/web01/data.vmdk", "vbox/db01/db01.vhd", "libvirt/app01.qcow2", "templates/web02.ova/web02-disk1.vmdk"} {
		dir := filepath.Join(mnt, d)
		got, err := os.ReadFile(filepath.Join(dir, "p0", "HELLO.TXT"))
		if err != nil || string(got) != string(hello) {
			t.Errorf("%s: reading hello.txt: %q %v", d, got, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "p0", "new.txt"), []byte("x"), 0o644); !isEROFS(err) {
			t.Errorf("%s: writing gave %v, want EROFS", d, err)
		}
		inf := infoOf(t, dir)
		if inf["writable"] != false || inf["vm"] == nil {
			t.Errorf("%s: info.json writable=%v vm=%v reason=%v", d, inf["writable"], inf["vm"], inf["read_only_reason"])
		}
	}
	if names := listNames(t, filepath.Join(mnt, "templates", "web02.ova")); strings.Join(names, ",") != "info.json,web02-disk1.vmdk" {
		t.Errorf("the OVA's folder holds %v", names)
	}
	// the package's own info.json: the OVF's hardware and the tar's members
	var pkg struct {
		Descriptor string `json:"descriptor"`
		Writable   bool   `json:"writable"`
		VM         struct {
			CPUs      int   `json:"cpus"`
			MemoryMiB int64 `json:"memory_mib"`
			Disks     []struct {
				Path     string `json:"path"`
				Capacity int64  `json:"capacity"`
			} `json:"disks"`
		} `json:"vm"`
		Members []struct {
			Name string `json:"name"`
		} `json:"members"`
	}
	b, err := os.ReadFile(filepath.Join(mnt, "templates", "web02.ova", "info.json"))
	must(t, err)
	must(t, json.Unmarshal(b, &pkg))
	if pkg.Descriptor != "web02.ovf" || pkg.Writable || pkg.VM.CPUs != 2 || pkg.VM.MemoryMiB != 2048 || len(pkg.VM.Disks) != 1 ||
		pkg.VM.Disks[0].Capacity != 16*mib || len(pkg.Members) != 2 {
		t.Errorf("the OVA's info.json:\n%s", b)
	}
	mustOffvm(t, "unmount", mnt)

	w := filepath.Join(lib, "vmware", "web01")
	must(t, os.Remove(filepath.Join(w, "web01-5f2a.vmss")))
	mnt = mountLib(t, lib)
	note := []byte("written after the VM was shut down\n")
	if err := os.WriteFile(filepath.Join(mnt, "vmware/web01/web01-000001.vmdk", "p0", "after.txt"), note, 0o644); err != nil {
		t.Fatalf("the current disk of a VM that is off: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "vmware/web01/web01.vmdk", "p0", "x.txt"), note, 0o644); !isEROFS(err) {
		t.Errorf("the snapshot's base took a write: %v", err)
	}
	if inf := infoOf(t, filepath.Join(mnt, "vmware/web01/web01-000001.vmdk")); inf["vm"].(map[string]any)["state"] != "off" {
		t.Errorf("state after the .vmss went: %v", inf["vm"])
	}
	mustOffvm(t, "unmount", mnt)
	leaf := filepath.Join(w, "web01-000001.vmdk")
	run(t, "qemu-img", "check", leaf)
	raw := filepath.Join(t.TempDir(), "leaf.raw")
	run(t, "qemu-img", "convert", "-O", "raw", leaf, raw)
	if out, err := exec.Command("fsck.fat", "-n", raw).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	if got := run(t, "mtype", "-i", raw, "::/after.txt"); got != string(note) {
		t.Errorf("mtype after.txt = %q", got)
	}
}

// TestLibvirtDir: domains kept outside the library (--libvirt, as
// /etc/libvirt/qemu) name its disks; their managed save holds them
// read-only in ls and in the mount.
func TestLibvirtDir(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644))
	fat := makeFAT(t, src, 16, 16, "DATA")
	lib, etc := t.TempDir(), t.TempDir()
	disk := filepath.Join(lib, "app02.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", fat, disk)
	must(t, os.WriteFile(filepath.Join(etc, "app02.xml"), []byte(strings.Replace(domainXML(disk), "app01", "app02", 1)), 0o644))
	must(t, os.WriteFile(filepath.Join(etc, "app02.save"), append([]byte("LibvirtQemudSave"), make([]byte, 80)...), 0o600))
	var plain, with []vmInfo
	must(t, json.Unmarshal([]byte(mustOffvm(t, "ls", "--json", lib)), &plain))
	must(t, json.Unmarshal([]byte(mustOffvm(t, "ls", "--json", "--libvirt", etc, lib)), &with))
	if len(plain) != 1 || plain[0].VM != nil || !plain[0].Writable {
		t.Errorf("without --libvirt: %+v", plain)
	}
	if len(with) != 1 || with[0].VM == nil || with[0].VM.Name != "app02" || with[0].Writable || !strings.Contains(str(with[0].ReadOnlyReason), "app02.save") {
		t.Fatalf("with --libvirt: %+v", with)
	}
	mnt := mountLib(t, lib, "--libvirt", etc)
	if err := os.WriteFile(filepath.Join(mnt, "app02.qcow2", "p0", "b.txt"), []byte("b"), 0o644); !isEROFS(err) {
		t.Errorf("write through the mount: %v, want EROFS", err)
	}
}

// TestPatchSleepingVM: patch apply leaves a suspended VM's disk
// byte-identical and says why; once the VM's state file is gone the same
// bundle applies (and e2fsck passes the result).
func TestPatchSleepingVM(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	testutil.RequireTool(t, "e2fsck", "e2fsprogs")
	root := t.TempDir()
	for p, c := range map[string]string{
		"etc/os-release":      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"etc/hostname":        "web03\n",
		"var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\n",
	} {
		must(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	ext := makeExt4(t, root, 16, "root")
	raw := filepath.Join(t.TempDir(), "web03.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 16, typ: "L", fs: ext}})
	lib := filepath.Join(t.TempDir(), "web03")
	must(t, os.MkdirAll(lib, 0o755))
	disk := filepath.Join(lib, "web01-000001.vmdk") // the name the .vmx gives
	run(t, "qemu-img", "convert", "-O", "vmdk", raw, disk)
	must(t, os.WriteFile(filepath.Join(lib, "web03.vmx"), []byte(strings.Replace(vmx("web03-1.vmss"), "data.vmdk", "none.vmdk", 1)), 0o644))
	vmss := filepath.Join(lib, "web03-1.vmss")
	must(t, os.WriteFile(vmss, []byte{0xd2, 0xbe, 0xd2, 0xbe}, 0o644))

	bundle := t.TempDir()
	must(t, os.WriteFile(filepath.Join(bundle, "patch.toml"), []byte("id = \"motd-1\"\ntitle = \"motd\"\n[applies]\nos = \"linux\"\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(bundle, "files", "p1", "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(bundle, "files", "p1", "etc", "motd"), []byte("patched\n"), 0o644))

	before := sumFile(t, disk)
	r := runOffvm(t, "patch", "apply", bundle, lib)
	if r.code == 0 || !strings.Contains(r.out, "failed") || !strings.Contains(r.out, "web03-1.vmss") {
		t.Errorf("patch apply to a suspended VM: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if sumFile(t, disk) != before {
		t.Fatalf("the suspended VM's disk changed")
	}
	if r := runOffvm(t, "patch", "apply", bundle, disk); r.code == 0 || !strings.Contains(r.out, "suspended") {
		t.Errorf("patch apply naming the disk: exit %d\n%s", r.code, r.out)
	}
	var inf vmInfo
	must(t, json.Unmarshal([]byte(mustOffvm(t, "inspect", "--json", disk)), &inf))
	if inf.VM == nil || inf.VM.Name != "web01" || inf.Writable || !strings.Contains(str(inf.ReadOnlyReason), "suspended") {
		t.Errorf("inspect of the disk: %+v reason %s", inf.VM, str(inf.ReadOnlyReason))
	}

	must(t, os.Remove(vmss))
	if out := mustOffvm(t, "patch", "apply", bundle, lib); !strings.Contains(out, "applied") {
		t.Errorf("after the VM was shut down: %s", out)
	}
	check := filepath.Join(t.TempDir(), "after.raw")
	run(t, "qemu-img", "check", disk)
	run(t, "qemu-img", "convert", "-O", "raw", disk, check)
	part := extractPart(t, check, partOffsets(t, check)[0], 16)
	if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	if got, err := exec.Command("debugfs", "-R", "cat /etc/motd", part).Output(); err != nil || string(got) != "patched\n" {
		t.Errorf("debugfs cat /etc/motd = %q, %v", got, err)
	}
}

// TestOVABroken: an OVA made of govmomi's real ttylinux descriptor and its
// streamOptimized disk cut at 1 MiB shows the disk, whose info.json names
// the damage and still carries the OVF's VM; an OVA whose descriptor is
// cut is an image that cannot be opened, in the tree and in ls. Neither
// costs the other images anything.
func TestOVABroken(t *testing.T) {
	cut := testutil.Corpus(t, "govmomi/truncated-streamOptimized.vmdk")
	pkg := t.TempDir()
	ovfSrc, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(), "vmconfig", "testdata", "ttylinux-pc_i486-16.1.ovf"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(pkg, "ttylinux-pc_i486-16.1.ovf"), ovfSrc, 0o644))
	testutil.CopyFile(t, cut, filepath.Join(pkg, "ttylinux-pc_i486-16.1-disk1.vmdk"))
	must(t, os.WriteFile(filepath.Join(pkg, "cut.ovf"), ovfSrc[:len(ovfSrc)/2], 0o644))
	lib := t.TempDir()
	run(t, "tar", "--format=ustar", "-C", pkg, "-cf", filepath.Join(lib, "tty.ova"), "ttylinux-pc_i486-16.1.ovf", "ttylinux-pc_i486-16.1-disk1.vmdk")
	run(t, "tar", "--format=ustar", "-C", pkg, "-cf", filepath.Join(lib, "cut.ova"), "cut.ovf", "ttylinux-pc_i486-16.1-disk1.vmdk")
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644))
	run(t, "qemu-img", "convert", "-O", "qcow2", makeFAT(t, src, 16, 16, "OK"), filepath.Join(lib, "ok.qcow2"))

	var infos []vmInfo
	must(t, json.Unmarshal([]byte(mustOffvm(t, "ls", "--json", lib)), &infos))
	got := map[string]vmInfo{}
	for _, in := range infos {
		rel, _ := filepath.Rel(lib, in.Path)
		got[rel] = in
	}
	disk := got["tty.ova/ttylinux-pc_i486-16.1-disk1.vmdk"]
	if disk.Error == nil || disk.VM == nil || disk.VM.Name != "ttylinux-pc_i486-16.1" || *disk.VM.MemoryMiB != 32 {
		t.Errorf("the cut disk in the OVA: error %v vm %+v", str(disk.Error), disk.VM)
	}
	if c := got["cut.ova"]; c.Error == nil || !strings.Contains(*c.Error, "cut.ova") {
		t.Errorf("the OVA with a cut descriptor: %+v", c)
	}
	if ok := got["ok.qcow2"]; ok.Error != nil || !ok.Writable {
		t.Errorf("the sound image beside them: %+v", ok)
	}
	mnt := mountLib(t, lib)
	if names := strings.Join(listNames(t, mnt), ","); names != "cut.ova,ok.qcow2,tty.ova" {
		t.Errorf("the tree holds %s", names)
	}
	if inf := infoOf(t, filepath.Join(mnt, "cut.ova")); inf["error"] == nil {
		t.Errorf("cut.ova's info.json has no error: %v", inf)
	}
	if inf := infoOf(t, filepath.Join(mnt, "tty.ova", "ttylinux-pc_i486-16.1-disk1.vmdk")); inf["error"] == nil || inf["vm"] == nil {
		t.Errorf("the cut disk's info.json: %v", inf)
	}
	must(t, os.WriteFile(filepath.Join(mnt, "ok.qcow2", "p0", "b.txt"), []byte("b"), 0o644))
}

// TestRegImportSleeping: reg import refuses the disk of a libvirt domain
// with a managed save, leaving it byte-identical; without the save the
// same file imports (hivexget reads the value back).
func TestRegImportSleeping(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeWindowsImage(t, img)
	must(t, os.WriteFile(filepath.Join(lib, "web01.xml"), []byte(strings.Replace(strings.Replace(domainXML(img), "app01", "web01", 1), "type='qcow2'", "type='raw'", 1)), 0o644))
	save := filepath.Join(lib, "web01.save")
	must(t, os.WriteFile(save, append([]byte("LibvirtQemudSave"), make([]byte, 80)...), 0o600))
	regFile := filepath.Join(t.TempDir(), "change.reg")
	must(t, os.WriteFile(regFile, []byte("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso]\r\n\"Level\"=dword:00000007\r\n"), 0o644))
	before := sumFile(t, img)
	if r := runOffvm(t, "reg", "import", img, regFile); r.code != 1 || !strings.Contains(r.err, "web01.save") {
		t.Errorf("reg import into a saved VM's disk: exit %d, %q", r.code, r.err)
	}
	if sumFile(t, img) != before {
		t.Fatalf("the saved VM's disk changed")
	}
	must(t, os.Remove(save))
	mustOffvm(t, "reg", "import", img, regFile)
	if got := strings.TrimSpace(run(t, "hivexget", ntfsCat(t, img, 3, "/Windows/System32/config/SOFTWARE"), `Contoso`, "Level")); got != "7" {
		t.Errorf("Level = %q after the save was gone", got)
	}
}
