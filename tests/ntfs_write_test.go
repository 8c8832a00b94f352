package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNTFSWriteThroughMount copies a tree into an NTFS volume with cp
// through the mount, changes it with ordinary tools, commits, and checks
// the result with ntfs-3g's tools: ntfsresize finds the volume consistent
// and an ntfs-3g mount shows exactly the expected tree.
func TestNTFSWriteThroughMount(t *testing.T) {
	seed := t.TempDir()
	writeFile(t, filepath.Join(seed, "Windows", "win.ini"), 3000)
	writeFile(t, filepath.Join(seed, "Program Files", "Contoso", "agent.dll"), 400000)
	ntfs := makeNTFS(t, 96, "Windows", func(dir string) { run(t, "cp", "-r", seed+"/.", dir) })
	lib := t.TempDir()
	img := filepath.Join(lib, "win.img")
	makeDisk(t, img, "gpt", []part{{sizeMiB: 96, typ: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", fs: ntfs}})

	// want is the tree the volume must hold afterwards
	want := t.TempDir()
	run(t, "cp", "-r", seed+"/.", want)
	src := t.TempDir()
	makeTree(t, src, treeOptions{bigDir: 600, deep: 12, unicode: true})

	mnt := mountLib(t, lib)
	vol := filepath.Join(mnt, "win.img", "p1")
	for _, dir := range []string{vol, want} {
		run(t, "cp", "-r", src+"/.", filepath.Join(dir, "Data"))
		must(t, os.WriteFile(filepath.Join(dir, "Program Files", "Contoso", "agent.dll"), []byte("version 2"), 0o644))
		must(t, os.Remove(filepath.Join(dir, "Windows", "win.ini")))
		must(t, os.Rename(filepath.Join(dir, "Data", "Docs"), filepath.Join(dir, "Program Files", "Docs")))
		must(t, os.Rename(filepath.Join(dir, "Data", "size-1.bin"), filepath.Join(dir, "Data", "renamed.bin")))
		must(t, os.Truncate(filepath.Join(dir, "Data", "size-65537.bin"), 1000))
		f, err := os.OpenFile(filepath.Join(dir, "Data", "size-4096.bin"), os.O_WRONLY|os.O_APPEND, 0)
		must(t, err)
		f.Write([]byte("appended"))
		f.Close()
		for i := 0; i < 300; i++ {
			must(t, os.Remove(filepath.Join(dir, "Data", "big", bigName(i*2))))
		}
		must(t, os.MkdirAll(filepath.Join(dir, "Empty", "Dir"), 0o755))
	}
	if err := os.WriteFile(filepath.Join(vol, "bad:name"), nil, 0o644); err == nil {
		t.Errorf("a name with ':' was created; Windows cannot hold it")
	}
	if err := os.WriteFile(filepath.Join(vol, "DATA", "RENAMED.BIN"), []byte("x"), 0o644); err != nil {
		t.Errorf("case-insensitive open for writing: %v", err)
	} else {
		must(t, os.WriteFile(filepath.Join(want, "Data", "renamed.bin"), []byte("x"), 0o644))
	}
	if err := os.Mkdir(filepath.Join(vol, "data"), 0o755); err == nil {
		t.Errorf("mkdir of a case twin succeeded")
	}
	run(t, "setfattr", "-n", "user.stream", "-v", "ads content", filepath.Join(vol, "Data", "renamed.bin"))
	mustOffvm(t, "unmount", mnt)

	part := extractPart(t, img, partOffsets(t, img)[0], 96)
	if out, err := exec.Command("ntfsresize", "--info", "--force", "--no-action", part).CombinedOutput(); err != nil || !strings.Contains(string(out), "Space in use") {
		t.Fatalf("ntfsresize --info: %v\n%s", err, out)
	}
	ref := ntfs3gMount(t, part, 0)
	compareTrees(t, want, ref)
	if got := xattr(t, filepath.Join(ref, "Data", "renamed.bin"), "user.stream"); got != "ads content" {
		t.Errorf("ADS through ntfs-3g: %q", got)
	}
}

func bigName(i int) string {
	return "entry-" + leftPad(i) + "-with-a-longer-name.txt"
}

func leftPad(i int) string {
	s := strconvItoa(int64(i))
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}
