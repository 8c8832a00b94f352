package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestInspectWindows: every field inspect reads from the guest's registry
// equals what the hives made by hivex hold.
func TestInspectWindows(t *testing.T) {
	lib := t.TempDir()
	img := filepath.Join(lib, "web01.img")
	makeWindowsImage(t, img)
	out := mustOffvm(t, "inspect", "--json", img)
	var inf struct {
		OS           map[string]any    `json:"os"`
		Drives       map[string]string `json:"drives"`
		Users        []map[string]any  `json:"users"`
		Applications []map[string]any  `json:"applications"`
		Updates      []map[string]any  `json:"updates"`
		Problems     []string          `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &inf); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	want := map[string]any{
		"family": "windows", "product_name": "Windows Server 2019 Standard", "edition": "ServerStandard",
		"version": "10.0", "build": 17763.0, "ubr": 4002.0, "arch": "amd64", "hostname": "web01",
		"domain": "corp.example", "install_date": "2020-01-02T21:20:00Z", "system_partition": "p3",
		"last_update": "2020-02-11T08:00:00Z",
	}
	for k, v := range want {
		if inf.OS[k] != v {
			t.Errorf("os.%s = %v, want %v", k, inf.OS[k], v)
		}
	}
	if len(inf.Drives) != 1 || inf.Drives["C"] != "p3" {
		t.Errorf("drives %v, want only C -> p3 (E: names no partition of this disk)", inf.Drives)
	}
	if len(inf.Users) != 1 || inf.Users[0]["sid"] != "S-1-5-21-1-2-3-1001" || inf.Users[0]["name"] != "alice" || inf.Users[0]["profile"] != `C:\Users\alice` {
		t.Errorf("users %v", inf.Users)
	}
	if len(inf.Applications) != 1 || inf.Applications[0]["name"] != "Contoso Agent" || inf.Applications[0]["version"] != "1.2.3" || inf.Applications[0]["publisher"] != "Contoso" {
		t.Errorf("applications %v", inf.Applications)
	}
	if len(inf.Updates) != 1 || inf.Updates[0]["id"] != "KB4532691" || inf.Updates[0]["installed"] != "2020-02-11T08:00:00Z" {
		t.Errorf("updates %v", inf.Updates)
	}
	if len(inf.Problems) != 0 {
		t.Errorf("problems: %v", inf.Problems)
	}

	// the mounted tree shows the drive letter and the same info.json
	mnt := mountLib(t, lib, "--ro")
	if target, err := os.Readlink(filepath.Join(mnt, "web01.img", "C")); err != nil || target != "p3" {
		t.Errorf("C -> %q (%v), want p3", target, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "web01.img", "C", "Windows", "System32", "drivers", "etc", "HOSTS")); err != nil {
		t.Errorf("C:/Windows/System32/drivers/etc/HOSTS through the link: %v", err)
	}
	if got := infoOf(t, filepath.Join(mnt, "web01.img"))["os"].(map[string]any)["hostname"]; got != "web01" {
		t.Errorf("info.json os.hostname %v", got)
	}
}
