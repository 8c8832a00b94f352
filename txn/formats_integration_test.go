//go:build integration

// The container formats of vdisk/* committed through txn, checked by
// qemu-img. Behind a build tag while those formats are being written:
//
//	go test -tags integration -run Formats ./txn/
package txn

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
	"github.com/offvm/offvm/vdisk"
	"github.com/offvm/offvm/vdisk/detect"
)

func openDetect(path string, opts vdisk.Options) (vdisk.Disk, error) {
	return detect.Open(path, detect.Options{Writable: opts.Writable, OpenFile: opts.OpenFile})
}

func init() { openers["detect"] = openDetect }

var qemuFormats = []struct {
	name string
	args []string
}{
	{"qcow2", []string{"-f", "qcow2"}},
	{"vhdx", []string{"-f", "vhdx"}},
	{"vhd", []string{"-f", "vpc", "-o", "subformat=dynamic"}},
	{"vmdk", []string{"-f", "vmdk"}},
}

// formatTarget is what the tests write: data at scattered places of the
// disk, across block and cluster boundaries. The disk's size is the one
// the format gives it (VHD rounds 64M up to a CHS geometry).
func formatTarget(t *testing.T, image string) []byte {
	d, err := openDetect(image, vdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return scatter(d.Size())
}

func scatter(size int64) []byte {
	t := make([]byte, size)
	copy(t[0:], randomBytes(40, 8192))
	copy(t[1<<20-100:], randomBytes(41, 300<<10))
	copy(t[33<<20+512:], randomBytes(42, 5000))
	copy(t[len(t)-4096:], randomBytes(43, 4096))
	return t
}

// qemuAgrees checks the image with qemu-img check (where the format has
// one) and compares its content with a raw file.
func qemuAgrees(t *testing.T, image string, want []byte) {
	t.Helper()
	out, err := exec.Command("qemu-img", "check", image).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not support checks") {
		t.Fatalf("qemu-img check %s: %v\n%s", image, err, out)
	}
	rawPath := filepath.Join(t.TempDir(), "want.raw")
	if err := os.WriteFile(rawPath, want, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-img", "compare", "-F", "raw", image, rawPath).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
}

func TestFormatsCommitRollback(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	for _, qf := range qemuFormats {
		t.Run(qf.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "disk.img")
			testutil.Run(t, "qemu-img", append(append([]string{"create"}, qf.args...), image, "64M")...)
			target := formatTarget(t, image)
			oldHash := hashDir(t, dir)
			res, err := commitTarget(image, "detect", target)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("commit: %+v", res)
			qemuAgrees(t, image, target)
			if err := Rollback(image); err != nil {
				t.Fatal(err)
			}
			if hashDir(t, dir) != oldHash {
				t.Fatal("rollback did not restore the image")
			}
			qemuAgrees(t, image, make([]byte, len(target)))
		})
	}
}

func TestFormatsCrash(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	for _, qf := range qemuFormats {
		t.Run(qf.name, func(t *testing.T) {
			var target []byte
			runCrashCase(t, crashCase{
				format: "detect",
				setup: func(t *testing.T, image string) []byte {
					testutil.Run(t, "qemu-img", append(append([]string{"create"}, qf.args...), image, "64M")...)
					target = formatTarget(t, image)
					return target
				},
				classify: func(t *testing.T, image string) string {
					v := readVirtual(t, image, "detect")
					if !bytes.Equal(v, target) {
						t.Fatal("image changed, yet its content is not the new one")
					}
					qemuAgrees(t, image, target)
					return "new"
				},
			}, 4)
		})
	}
}

// BenchmarkCommitVHDX10MiB commits 10 MiB (ten 1 MiB pieces spread over
// the disk, new data each time) into dynamic VHDX images of 1 GiB and
// 100 GiB made by qemu-img.
func BenchmarkCommitVHDX10MiB(b *testing.B) {
	testutil.RequireTool(b, "qemu-img", "qemu-utils")
	for _, size := range []string{"1G", "100G"} {
		b.Run("image="+size, func(b *testing.B) {
			dir := b.TempDir()
			image := filepath.Join(dir, "disk.vhdx")
			testutil.Run(b, "qemu-img", "create", "-f", "vhdx", image, size)
			piece := randomBytes(50, 1<<20)
			b.SetBytes(10 << 20)
			for b.Loop() {
				base, err := openDetect(image, vdisk.Options{})
				if err != nil {
					b.Fatal(err)
				}
				o, err := NewOverlay(base, dir)
				if err != nil {
					b.Fatal(err)
				}
				for j := range piece {
					piece[j]++
				}
				stride := (base.Size() / 10) &^ (1<<20 - 1)
				for k := int64(0); k < 10; k++ {
					if _, err := o.WriteAt(piece, k*stride); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := Commit(image, o, openDetect); err != nil {
					b.Fatal(err)
				}
				o.Close()
			}
		})
	}
}
