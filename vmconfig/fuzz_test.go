package vmconfig

import (
	"bytes"
	"os"
	"testing"
)

// seed adds the testdata files as the fuzzers' first inputs.
func seed(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
}

// Each parser takes any bytes without panicking, and what it accepts is
// a VM with a kind.
func fuzzParser(f *testing.F, parse func([]byte) (*VM, error), seeds ...string) {
	seed(f, seeds...)
	f.Fuzz(func(t *testing.T, b []byte) {
		vm, err := parse(b)
		if err == nil && vm.Kind == "" {
			t.Errorf("accepted a VM without a kind")
		}
		Sniff(b)
	})
}

func FuzzVMX(f *testing.F) {
	fuzzParser(f, func(b []byte) (*VM, error) { return ParseVMX(bytes.NewReader(b)) }, "web01.vmx")
}

func FuzzVMSD(f *testing.F) {
	seed(f, "web01.vmsd")
	f.Fuzz(func(t *testing.T, b []byte) { ParseVMSD(bytes.NewReader(b)) })
}

func FuzzVBox(f *testing.F) {
	fuzzParser(f, func(b []byte) (*VM, error) { return ParseVBox(bytes.NewReader(b)) }, "db01.vbox")
}

func FuzzLibvirt(f *testing.F) {
	fuzzParser(f, func(b []byte) (*VM, error) { return ParseLibvirt(bytes.NewReader(b)) }, "app01.xml")
}

func FuzzOVF(f *testing.F) {
	fuzzParser(f, func(b []byte) (*VM, error) { return ParseOVF(bytes.NewReader(b)) }, "ttylinux-pc_i486-16.1.ovf", "CentOS-With-Tools.ovf")
}

// FuzzOVA: any tar (or not) is indexed without panicking, and every
// member it reports lies inside the file.
func FuzzOVA(f *testing.F) {
	seed(f, "tty.ova")
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOVA(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, m := range o.Members {
			if m.Offset < 0 || m.Size < 0 || m.Offset+m.Size > int64(len(b)) {
				t.Errorf("member %+v outside the %d-byte file", m, len(b))
			}
		}
	})
}
