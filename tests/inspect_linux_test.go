package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestInspectLinux: a Debian-like root file system made by mkfs.ext4 -d;
// every field inspect reports is compared with what was put there.
func TestInspectLinux(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"etc/os-release":              "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		"etc/hostname":                "db01\n",
		"boot/vmlinuz-6.1.0-13-amd64": "kernel",
		"boot/vmlinuz-6.1.0-18-amd64": "kernel",
		"var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\n" +
			"Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2+deb12u2\n\n" +
			"Package: removed-thing\nStatus: deinstall ok config-files\nVersion: 1.0\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ext := makeExt4(t, root, 16, "root")
	img := filepath.Join(t.TempDir(), "db01.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 4, typ: "U"}, {sizeMiB: 16, typ: "L", fs: ext}})

	var inf struct {
		Format string `json:"format"`
		OS     struct {
			Family, ProductName, Version, Hostname, Arch, Distribution *string
			SystemPartition                                            string   `json:"system_partition"`
			Kernels                                                    []string `json:"kernels"`
		} `json:"os"`
		Applications []struct {
			Name    string  `json:"name"`
			Version *string `json:"version"`
		} `json:"applications"`
	}
	out := mustOffvm(t, "inspect", "--json", img)
	if err := json.Unmarshal([]byte(out), &inf); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	var raw map[string]map[string]any
	json.Unmarshal([]byte(out), &raw)
	os := raw["os"]
	check := func(field, want string) {
		if got, _ := os[field].(string); got != want {
			t.Errorf("os.%s = %q, want %q", field, got, want)
		}
	}
	check("family", "linux")
	check("product_name", "Debian GNU/Linux 12 (bookworm)")
	check("version", "12")
	check("hostname", "db01")
	check("arch", "amd64")
	check("distribution", "debian")
	check("system_partition", "p2")
	if len(inf.OS.Kernels) != 2 || inf.OS.Kernels[1] != "6.1.0-18-amd64" {
		t.Errorf("kernels %v", inf.OS.Kernels)
	}
	if len(inf.Applications) != 2 || inf.Applications[0].Name != "libc6" || inf.Applications[1].Name != "openssh-server" ||
		*inf.Applications[1].Version != "1:9.2p1-2+deb12u2" {
		t.Errorf("applications %+v (removed packages must not be listed)", inf.Applications)
	}
	if _, ok := os["build"]; !ok || os["build"] != nil {
		t.Errorf("os.build should be null for Linux, is %v", os["build"])
	}
}
