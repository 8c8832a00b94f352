package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExt4WriteThroughMount: a Debian-like ext4 root inside a qcow2 image
// is changed through the mount with ordinary tools; after the commit,
// qemu-img check, e2fsck -fn and debugfs (not our reader) agree.
func TestExt4WriteThroughMount(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc", "motd"), 100)
	writeFile(t, filepath.Join(root, "usr", "bin", "old-tool"), 50000)
	raw := filepath.Join(t.TempDir(), "d.raw")
	makeDisk(t, raw, "gpt", []part{{sizeMiB: 32, typ: "L", fs: makeExt4(t, root, 32, "root")}})
	lib := t.TempDir()
	img := filepath.Join(lib, "db01.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", raw, img)

	mnt := mountLib(t, lib)
	p := filepath.Join(mnt, "db01.qcow2", "p1")
	if w := infoOf(t, filepath.Join(mnt, "db01.qcow2"))["partitions"].([]any)[0].(map[string]any)["writable"]; w != true {
		t.Fatalf("ext4 partition not writable: %v", infoOf(t, filepath.Join(mnt, "db01.qcow2"))["partitions"])
	}
	must(t, os.WriteFile(filepath.Join(p, "etc", "motd"), []byte("patched by offvm\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(p, "opt", "contoso", "bin"), 0o755))
	agent := make([]byte, 3<<20)
	for i := range agent {
		agent[i] = byte(i*7 + i/4096)
	}
	must(t, os.WriteFile(filepath.Join(p, "opt", "contoso", "bin", "agent"), agent, 0o755))
	must(t, os.Remove(filepath.Join(p, "usr", "bin", "old-tool")))
	must(t, os.Symlink("/opt/contoso/bin/agent", filepath.Join(p, "usr", "bin", "agent")))
	mustOffvm(t, "unmount", mnt)

	if out, err := exec.Command("qemu-img", "check", img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	back := filepath.Join(t.TempDir(), "back.raw")
	run(t, "qemu-img", "convert", "-O", "raw", img, back)
	part := extractPart(t, back, partOffsets(t, back)[0], 32)
	if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	if got := run(t, "debugfs", "-R", "cat /etc/motd", part); !strings.Contains(got, "patched by offvm") {
		t.Errorf("debugfs cat /etc/motd: %q", got)
	}
	dump := t.TempDir()
	run(t, "debugfs", "-R", "rdump /opt "+dump, part)
	if ls := run(t, "debugfs", "-R", "ls -l /usr/bin", part); strings.Contains(ls, "old-tool") || !strings.Contains(ls, "agent") {
		t.Errorf("debugfs ls /usr/bin:\n%s", ls)
	}
	if got, err := os.ReadFile(filepath.Join(dump, "opt", "contoso", "bin", "agent")); err != nil || !bytes.Equal(got, agent) {
		t.Errorf("agent as debugfs dumps it differs (%d bytes, %v)", len(got), err)
	}
	if link := run(t, "debugfs", "-R", "stat /usr/bin/agent", part); !strings.Contains(link, "/opt/contoso/bin/agent") {
		t.Errorf("symlink as debugfs sees it:\n%s", link)
	}
}
