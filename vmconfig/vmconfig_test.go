package vmconfig

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func open(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// js renders v compactly, so a table can state what a parser must find.
func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestParsers: each format's hardware, disks and NICs, as the file says
// them and nothing more.
func TestParsers(t *testing.T) {
	tests := []struct {
		file  string
		parse func(*os.File) (*VM, error)
		want  map[string]string // field → its JSON
	}{
		{"web01.vmx", func(f *os.File) (*VM, error) { return ParseVMX(f) }, map[string]string{
			"name": `"web01"`, "cpus": `2`, "mem": `4096`, "os": `"windows2019srv-64"`, "state_file": `"web01-d8b1a0c4.vmss"`,
			// the absent scsi0:2 and the ISO are left out
			"disks": `[{"path":"web01-000001.vmdk","controller":"scsi0","slot":"0:0"},{"path":"data.vmdk","controller":"scsi0","slot":"0:1"}]`,
			"nics":  `[{"mac":"00:0c:29:3a:5b:7c","network":"nat","model":"e1000e"},{"mac":"00:50:56:01:02:03","network":"VM Network","model":"vmxnet3"}]`,
		}},
		{"db01.vbox", func(f *os.File) (*VM, error) { return ParseVBox(f) }, map[string]string{
			"name": `"db01"`, "cpus": `2`, "mem": `2048`, "os": `"Debian_64"`, "state_file": `"Snapshots/2026-03-01T10-00-00-123456789Z.sav"`,
			// the current state's disk is the snapshot's child, not the base
			"disks": `[{"path":"Snapshots/{3c72ec80-dc73-4448-a63e-97970cdd87e5}.vdi","controller":"SATA","slot":"port 0 device 0"},{"path":"db01.vdi","controller":"SATA","slot":"port 0 device 0","snapshot":"base"},{"path":"db01-data.vmdk","controller":"SATA","slot":"port 1 device 0"}]`,
			// the disabled adapter is left out; DisabledModes are not read
			"nics":      `[{"mac":"08:00:27:7a:a2:fc","network":"NAT","model":"82540EM"},{"mac":"08:00:27:8c:c8:21","network":"eth0","model":"virtio"}]`,
			"snapshots": `[{"id":"a1b2c3d4-0000-4000-8000-000000000002","name":"installed","parent":null,"created":"2026-02-01T09:00:00Z","current":true,"memory":"Snapshots/{a1b2c3d4-0000-4000-8000-000000000002}.sav"}]`,
		}},
		{"app01.xml", func(f *os.File) (*VM, error) { return ParseLibvirt(f) }, map[string]string{
			"name": `"app01"`, "cpus": `4`, "mem": `2048`, "os": `null`, "state_file": `""`,
			"disks": `[{"path":"/var/lib/libvirt/images/app01.qcow2","controller":"virtio","slot":"vda"}]`,
			"nics":  `[{"mac":"52:54:00:6b:3c:58","network":"default","model":"virtio"},{"mac":"52:54:00:aa:bb:cc","network":"br0","model":"e1000e"}]`,
		}},
		{"ttylinux-pc_i486-16.1.ovf", func(f *os.File) (*VM, error) { return ParseOVF(f) }, map[string]string{
			"name": `"ttylinux-pc_i486-16.1"`, "cpus": `1`, "mem": `32`, "os": `null`, "state_file": `""`,
			"disks": `[{"path":"ttylinux-pc_i486-16.1-disk1.vmdk","controller":"ideController0","slot":"0","capacity":31457280}]`,
			"nics":  `[{"mac":null,"network":"nat","model":"E1000"}]`,
		}},
		{"CentOS-With-Tools.ovf", func(f *os.File) (*VM, error) { return ParseOVF(f) }, map[string]string{
			"name": `"CentOS-With-Tools"`, "cpus": `2`, "mem": `1512`, "os": `"CentOS 4/5/6 (32-bit)"`,
			"disks": `[{"path":"CentOS-With-Tools-disk1.vmdk","controller":"SCSI Controller 0","slot":"0","capacity":8589934592}]`,
			"nics":  `[{"mac":null,"network":"none","model":"VMXNET3"}]`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			vm, err := tc.parse(open(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{"name": js(vm.Name), "cpus": js(vm.CPUs), "mem": js(vm.MemoryMiB), "os": js(vm.OSType),
				"state_file": js(vm.StateFile), "disks": js(vm.Disks), "nics": js(vm.NICs), "snapshots": js(vm.Snapshots)}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s = %s\nwant   %s", k, got[k], want)
				}
			}
		})
	}
}

// TestVMSD: the snapshot list, its creation time from the two halves,
// and the disk each snapshot froze.
func TestVMSD(t *testing.T) {
	sd, err := ParseVMSD(open(t, "web01.vmsd"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.Snapshots) != 1 {
		t.Fatalf("snapshots = %s", js(sd.Snapshots))
	}
	s := sd.Snapshots[0]
	// 394857<<32 | uint32(-1209348352) µs, as python3 datetime computes it
	if s.ID != "2" || s.Name != "before KB5034439" || !s.Current || js(s.Memory) != `"web01-Snapshot2.vmsn"` || js(s.Created) != `"2023-09-28T11:36:27Z"` {
		t.Errorf("snapshot = %s", js(s))
	}
	if sd.Disks["2"]["scsi0:0"] != "web01.vmdk" {
		t.Errorf("disks = %v", sd.Disks)
	}
}

// TestSniff: every kind is told by content, and other files are none.
func TestSniff(t *testing.T) {
	tests := map[string]string{
		"web01.vmx": VMware, "web01.vmsd": "vmsd", "db01.vbox": VirtualBox, "app01.xml": Libvirt,
		"ttylinux-pc_i486-16.1.ovf": OVF, "CentOS-With-Tools.ovf": OVF, "NOTICE": "",
	}
	for name, want := range tests {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		if got := Sniff(b); got != want {
			t.Errorf("Sniff(%s) = %q, want %q", name, got, want)
		}
	}
	for _, b := range [][]byte{nil, []byte("hello = world\n"), []byte("<html></html>"), bytes.Repeat([]byte{0}, 4096)} {
		if got := Sniff(b); got != "" {
			t.Errorf("Sniff(%q) = %q", b, got)
		}
	}
}

// TestRefuses: a parser given another format's file, or a broken one,
// says so and does not panic.
func TestRefuses(t *testing.T) {
	vbox, _ := os.ReadFile("testdata/db01.vbox")
	vmx, _ := os.ReadFile("testdata/web01.vmx")
	for name, err := range map[string]error{
		"vmx of vbox":     second(ParseVMX(bytes.NewReader(vbox))),
		"vbox of vmx":     second(ParseVBox(bytes.NewReader(vmx))),
		"libvirt of vbox": second(ParseLibvirt(bytes.NewReader(vbox))),
		"ovf of vmx":      second(ParseOVF(bytes.NewReader(vmx))),
		"cut vbox":        second(ParseVBox(bytes.NewReader(vbox[:len(vbox)/2]))),
		"vmsd of vmx":     second(ParseVMSD(bytes.NewReader(vmx))),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestUnits(t *testing.T) {
	tests := []struct {
		v, unit string
		want    int64
	}{
		{"30", "byte * 2^20", 30 << 20}, {"8", "byte * 2^30", 8 << 30}, {"512", "MegaBytes", 512 << 20},
		{"1000", "byte*10^3", 1000 * 1000}, {"7", "byte", 7}, {"4", "", 4 << 20},
	}
	for _, tc := range tests {
		if got, ok := ovfQuantity(tc.v, tc.unit, "byte * 2^20"); !ok || got != tc.want {
			t.Errorf("ovfQuantity(%s, %s) = %d, %v; want %d", tc.v, tc.unit, got, ok, tc.want)
		}
	}
	if _, ok := ovfQuantity("3", "furlongs", "byte"); ok {
		t.Errorf("an unknown unit was accepted")
	}
	if n, ok := libvirtBytes("2097152", ""); !ok || n != 2<<30 {
		t.Errorf("libvirt default unit: %d", n)
	}
	if n, ok := libvirtBytes("2", "GB"); !ok || n != 2e9 {
		t.Errorf("libvirt GB: %d", n)
	}
}

// TestVMXOddLine: a .vmx with a line VMware would skip is still read (its
// suspended state must not be lost), while prose is no dictionary.
func TestVMXOddLine(t *testing.T) {
	b, _ := os.ReadFile("testdata/web01.vmx")
	b = append([]byte("this line is not a setting\n"), b...)
	vm, err := ParseVMX(bytes.NewReader(b))
	if err != nil || vm.StateFile != "web01-d8b1a0c4.vmss" {
		t.Errorf("ParseVMX with an odd line: %v %v", vm, err)
	}
	if _, err := ParseDict([]byte("Dear admin,\nthe VM = web01\nplease shut it down.\nThanks\n")); err == nil {
		t.Errorf("a letter was taken for a dictionary")
	}
}
