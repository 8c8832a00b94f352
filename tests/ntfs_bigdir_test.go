package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sys32Name is a long name of a Windows\System32-shaped directory.
func sys32Name(i int) string {
	return fmt.Sprintf("microsoft-windows-component-servicing-%05d-long-file-name-for-system32.dll", i)
}

// touchNames makes n empty files in dir with one xargs (a few processes).
func touchNames(t *testing.T, dir string, n int) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(sys32Name(i) + "\n")
	}
	cmd := exec.Command("xargs", "touch")
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("touch %d names in %s: %v\n%s", n, dir, err, out)
	}
}

// TestNTFSBigDirectoryThroughMount patches a System32 of 40,000 long
// names (ntfs-3g made its index $BITMAP non-resident) through the mount as
// a user would: overwrite, append, create, delete, rename; after the
// commit ntfsresize finds the volume consistent and ntfs-3g shows exactly
// the expected tree.
func TestNTFSBigDirectoryThroughMount(t *testing.T) {
	const names, size = 40000, 512
	ntfs := makeNTFS(t, size, "Windows", func(dir string) {
		touchNames(t, filepath.Join(dir, "Windows", "System32"), names)
		must(t, os.WriteFile(filepath.Join(dir, "Windows", "System32", sys32Name(7)), []byte("old driver"), 0o644))
	})
	lib := t.TempDir()
	img := filepath.Join(lib, "win.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: size, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})
	want := t.TempDir()
	touchNames(t, filepath.Join(want, "Windows", "System32"), names)
	must(t, os.WriteFile(filepath.Join(want, "Windows", "System32", sys32Name(7)), []byte("old driver"), 0o644))

	mnt := mountLib(t, lib)
	for _, root := range []string{filepath.Join(mnt, "win.img", "p1"), want} {
		sys := filepath.Join(root, "Windows", "System32")
		must(t, os.WriteFile(filepath.Join(sys, sys32Name(7)), []byte("new driver"), 0o644))
		f, err := os.OpenFile(filepath.Join(sys, sys32Name(7)), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		_, err = f.Write([]byte(" with a fix"))
		must(t, err)
		must(t, f.Close())
		for i := 0; i < 200; i++ {
			must(t, os.WriteFile(filepath.Join(sys, fmt.Sprintf("patch-%03d-%s", i, sys32Name(i))), []byte{byte(i)}, 0o644))
		}
		for i := 10000; i < 10500; i++ {
			must(t, os.Remove(filepath.Join(sys, sys32Name(i))))
		}
		must(t, os.Rename(filepath.Join(sys, sys32Name(20000)), filepath.Join(sys, "renamed-"+sys32Name(20000))))
		must(t, os.Rename(filepath.Join(sys, sys32Name(20001)), filepath.Join(root, "Windows", "moved.dll")))
	}
	mustOffvm(t, "unmount", mnt)

	part := extractPart(t, img, partOffsets(t, img)[0], size)
	if out, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", part).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "Space in use") || strings.Contains(strings.ToLower(string(out)), "error") {
		t.Fatalf("ntfsresize --info: %v\n%s", err, out)
	}
	compareTrees(t, want, ntfs3gMount(t, part, 0))
}
