package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// TestRegistryParallelScanners is issue 10's report, as a user would run
// it: a real 11 MiB Windows 7 SYSTEM hive (30,756 keys) in an image, a
// fresh read-write mount, and 8 scanners at once, each walking
// registry/HKLM/SYSTEM and reading values in its own random order with
// two cat processes (find | shuf | xargs -P2 cat). Every walk must finish
// cleanly, the daemon must survive and still answer, and unmount must
// succeed; three fresh mounts in a row (the daemon used to die with
// "concurrent map writes" within the first two).
func TestRegistryParallelScanners(t *testing.T) {
	testutil.RequireTool(t, "ntfs-3g", "ntfs-3g")
	testutil.RequireTool(t, "shuf", "coreutils")
	p := corpusHive(t, "regipy/SYSTEM.xz")
	lib := t.TempDir()
	ntfs := makeNTFS(t, 48, "W", func(dir string) {
		cfg := filepath.Join(dir, "Windows", "System32", "config")
		must(t, os.MkdirAll(cfg, 0o755))
		run(t, "cp", p, filepath.Join(cfg, "SYSTEM"))
	})
	makeDisk(t, filepath.Join(lib, "win.img"), "gpt", []part{{sizeMiB: 48, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	const scanners, perScanner = 8, 2500
	for round := range 3 {
		mnt := mountLib(t, lib)
		sys := filepath.Join(mnt, "win.img", "registry", "HKLM", "SYSTEM")
		var wg sync.WaitGroup
		errs := make([]string, scanners)
		for i := range scanners {
			wg.Go(func() {
				// The find walks every key; the cats read a random sample
				// of values (all 8 together read about 20,000).
				script := fmt.Sprintf("set -o pipefail; find %q -type f | shuf -n %d --random-source=<(yes %d) | xargs -d '\\n' -P2 -n 200 cat > /dev/null", sys, perScanner, i+10*round)
				out, err := exec.Command("bash", "-c", script).CombinedOutput()
				if err != nil {
					errs[i] = fmt.Sprintf("scanner %d: %v: %s", i, err, clipText(string(out)))
				}
			})
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Error(e)
			}
		}
		name := filepath.Join(sys, "ControlSet001", "Control", "ComputerName", "ComputerName", "ComputerName")
		if got, err := os.ReadFile(name); err != nil || string(got) != "WKS-WIN732BITA\n" {
			t.Fatalf("round %d: after the scanners, ComputerName reads %q, %v: the daemon is gone or wrong", round, got, err)
		}
		mustOffvm(t, "unmount", mnt)
		if isMounted(mnt) {
			t.Fatalf("round %d: still mounted after unmount", round)
		}
	}
}

func clipText(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return strings.TrimSpace(s)
}
