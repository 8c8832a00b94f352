package patcher

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offvm/offvm/inspect"

	"github.com/offvm/offvm/internal/testutil"
)

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// linuxImage is a bare ext4 file system made by mkfs.ext4 -d, holding a
// Debian os-release.
func linuxImage(t *testing.T) string {
	testutil.RequireTool(t, "mkfs.ext4", "e2fsprogs")
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"
	if err := os.WriteFile(filepath.Join(src, "etc", "os-release"), []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "db01.img")
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "16M")
	return img
}

// TestApplyLinux: a Linux guest is recognised (the rules match Debian
// GNU/Linux across its slash), a dry run plans the file and the record in
// /var/lib/offvm/patches and changes nothing; the apply writes both into
// the ext4 volume, which e2fsck -fn finds sound and debugfs reads back;
// applying again changes nothing; a Windows bundle is not applicable.
func TestApplyLinux(t *testing.T) {
	testutil.RequireTool(t, "debugfs", "e2fsprogs")
	img := linuxImage(t)
	before := sum(t, img)
	b, err := LoadBundle(bundleDir(t, map[string]string{
		"patch.toml":        "id = \"motd-1\"\n[applies]\nos = \"linux\"\nproduct = \"Debian*\"\n",
		"files/p0/etc/motd": "patched\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	dry := Apply(img, b, Options{DryRun: true})
	var lines []string
	for _, c := range dry.Changes {
		lines = append(lines, c.String())
	}
	got := strings.Join(lines, "\n")
	if dry.Status != WouldApply || !strings.Contains(got, "create       p0:/etc/motd (8 bytes)") || !strings.Contains(got, "record       /var/lib/offvm/patches/motd-1") {
		t.Errorf("dry run: %s\n%s", dry.Line(), got)
	}
	if sum(t, img) != before {
		t.Fatalf("the dry run changed the image")
	}
	if res := Apply(img, b, Options{}); res.Status != Applied {
		t.Fatalf("apply to ext4: %s", res.Line())
	}
	testutil.Run(t, "e2fsck", "-fn", img)
	if motd := testutil.Run(t, "debugfs", "-R", "cat /etc/motd", img); !strings.Contains(motd, "patched") {
		t.Errorf("debugfs cat /etc/motd: %q", motd)
	}
	if rec := testutil.Run(t, "debugfs", "-R", "cat /var/lib/offvm/patches/motd-1", img); !strings.Contains(rec, "motd-1") {
		t.Errorf("debugfs cat of the record: %q", rec)
	}
	if st := Status(img, b); st.Status != Applied {
		t.Errorf("status: %s", st.Line())
	}
	if inf := inspect.Image(img); len(inf.Patches) != 1 || inf.Patches[0].(inspect.Patch).ID != "motd-1" {
		t.Errorf("inspect lists patches %v", inf.Patches)
	}
	after := sum(t, img)
	if again := Apply(img, b, Options{}); again.Status != AlreadyApplied || sum(t, img) != after {
		t.Errorf("second apply: %s (image changed: %v)", again.Line(), sum(t, img) != after)
	}
	win, err := LoadBundle(bundleDir(t, map[string]string{"patch.toml": "id = \"w\"\n[applies]\nos = \"windows\"\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if r := Apply(img, win, Options{}); r.Line() != img+": not applicable: os linux is not windows" {
		t.Errorf("windows bundle on linux: %s", r.Line())
	}
}

// TestRunIndependent: targets that cannot be opened fail on their own
// line, in order, and the others still run.
func TestRunIndependent(t *testing.T) {
	img := linuxImage(t)
	b, err := LoadBundle(bundleDir(t, map[string]string{"patch.toml": "id = \"w\"\n[applies]\nos = \"windows\"\n"}))
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk.vhdx")
	if err := os.WriteFile(junk, []byte("vhdxfile not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	imgs := Expand([]string{"/no/such/image", junk, img})
	res := Run(b, imgs, 3, false, Options{})
	if len(res) != 3 || res[0].Status != Failed || res[1].Status != Failed || res[2].Status != NotApplicable {
		for _, r := range res {
			t.Log(r.Line())
		}
		t.Errorf("want failed, failed, not applicable")
	}
}

// TestParentRefused: an image another image of the library builds on (a
// qcow2 child made by qemu-img) is never written; the child is a target
// of its own, and naming an image twice patches it once.
func TestParentRefused(t *testing.T) {
	testutil.RequireTool(t, "qemu-img", "qemu-utils")
	base := linuxImage(t)
	lib := filepath.Dir(base)
	child := filepath.Join(lib, "db01-child.qcow2")
	testutil.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", child)
	b, err := LoadBundle(bundleDir(t, map[string]string{"patch.toml": "id = \"any\"\n"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, targets := range [][]string{{lib}, {base, lib}} {
		imgs := Expand(targets)
		if len(imgs) != 2 {
			t.Fatalf("Expand(%v) = %+v, want the base and the child once each", targets, imgs)
		}
		for _, r := range Run(b, imgs, 2, false, Options{}) {
			switch r.Image {
			case base:
				if r.Reason != "cannot write: "+parentReason {
					t.Errorf("base: %s", r.Line())
				}
			case child:
				if r.Status != Applied && r.Status != AlreadyApplied {
					t.Errorf("child: %s", r.Line())
				}
			default:
				t.Errorf("unexpected target %s", r.Line())
			}
		}
	}
}
