//go:build integration && offvmfault && !race

package txn

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
)

// TestFormatsCrashStates explores every crash state of one commit into
// each real container format made by qemu-img (data at both ends and
// across a 1 MiB boundary, so tables, bitmaps and headers all change):
// each recovers to the old image or the new one, and qemu-img check
// accepts the new one and a sample of recovered states.
func TestFormatsCrashStates(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	for _, qf := range qemuFormats {
		t.Run(qf.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			testutil.Run(t, "qemu-img", append(append([]string{"create"}, qf.args...), image, "64M")...)
			d, err := openDetect(image, vdisk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			target := make([]byte, d.Size())
			d.Close()
			copy(target[0:], randomBytes(60, 8192))
			copy(target[1<<20-6000:], randomBytes(61, 12000))
			copy(target[len(target)-4096:], randomBytes(62, 4096))
			checks := 0
			res := exploreCommit(t, dir, image, func() error {
				_, err := commitTarget(image, "detect", target)
				return err
			}, func(img string) {
				checks++
				out, err := exec.Command("qemu-img", "check", img).CombinedOutput()
				if err != nil && !strings.Contains(string(out), "does not support checks") {
					t.Fatalf("qemu-img check of a recovered state: %v\n%s", err, out)
				}
			})
			qemuAgrees(t, image, target)
			if !bytes.Equal(readVirtual(t, image, "detect"), target) {
				t.Fatal("the committed image does not read as the target")
			}
			t.Logf("%s: %d operations, %d crash states, %d distinct: %d recovered old, %d new; qemu-img check on %d of them",
				qf.name, res.ops, res.states, res.distinct, res.old, res.new, checks)
			if res.old == 0 || res.new == 0 {
				t.Errorf("no state recovered to old (%d) or none to new (%d)", res.old, res.new)
			}
		})
	}
}
