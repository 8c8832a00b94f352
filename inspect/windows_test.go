package inspect

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/registry/hive"
)

// TestSystemFactsControlSet: the facts come from the control set
// Select\Current names (ControlSet001 is looked up before Select is read,
// and again under the right set when Select names another), the network
// name from Tcpip or else ComputerName; the hives are checked by hivexget
// before offvm reads them.
func TestSystemFactsControlSet(t *testing.T) {
	testutil.RequireTool(t, "hivexget", "libhivex-bin")
	cases := []struct {
		name    string
		current uint32 // 0: no Select key
		noTcpip bool   // ControlSet002 has no Tcpip hostname
		host    string
		arch    string
	}{
		{"current 1", 1, false, "one", "amd64"},
		{"current 2", 2, false, "two", "x86"},
		{"no Select", 0, false, "one", "amd64"},
		{"current 2, ComputerName", 2, true, "cn-two", "x86"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hive.New("ROOT")
			set := func(path, name string, typ uint32, data []byte) {
				t.Helper()
				k, err := h.Root().CreatePath(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := k.SetValue(name, typ, data); err != nil {
					t.Fatal(err)
				}
			}
			if c.current != 0 {
				set("Select", "Current", hive.RegDword, binary.LittleEndian.AppendUint32(nil, c.current))
			}
			for n, f := range map[string][2]string{"001": {"ONE", "AMD64"}, "002": {"TWO", "x86"}} {
				cs := "ControlSet" + n
				set(cs+`\Control\Session Manager\Environment`, "PROCESSOR_ARCHITECTURE", hive.RegSz, sz(f[1]))
				set(cs+`\Control\ComputerName\ComputerName`, "ComputerName", hive.RegSz, sz("CN-"+f[0]))
				if n == "002" && c.noTcpip {
					set(cs+`\Services\Tcpip\Parameters`, "Domain", hive.RegSz, sz("corp"))
				} else {
					set(cs+`\Services\Tcpip\Parameters`, "Hostname", hive.RegSz, sz(f[0]))
				}
			}
			data, err := h.Serialize()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "SYSTEM")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if c.current != 0 {
				out, err := exec.Command("hivexget", file, "Select", "Current").Output()
				if err != nil || strings.TrimSpace(string(out)) != string(rune('0'+c.current)) {
					t.Fatalf("hivexget Select\\Current: %q, %v", out, err)
				}
			}
			sys, err := hive.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			var o OS
			systemFacts(&o, sys)
			if got := deref(o.Hostname); got != c.host {
				t.Errorf("hostname %q, want %q", got, c.host)
			}
			if got := deref(o.Arch); got != c.arch {
				t.Errorf("architecture %q, want %q", got, c.arch)
			}
		})
	}
}

// sz is s as a REG_SZ value's data: UTF-16LE, NUL-terminated.
func sz(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}
