package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/offvm/offvm/txn"
)

func TestNoteFromArgs(t *testing.T) {
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "patch.toml"), []byte("id = \"kb-1\"\ntitle = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want txn.Note
	}{
		{[]string{"offvm", "mount", "-f", "lib", "/mnt"}, txn.Note{Command: "unmount"}},
		{[]string{"/sbin/mount.fuse.offvm", "lib", "/mnt", "-o", "ro"}, txn.Note{Command: "unmount"}},
		{[]string{"offvm", "-v", "reg", "import", "a.img", "x.reg"}, txn.Note{Command: "reg import"}},
		{[]string{"offvm", "patch", "apply", "--jobs", "2", bundle, "a.img"}, txn.Note{Command: "patch apply", Bundle: "kb-1"}},
		{[]string{"offvm", "patch", "apply", "/nonexistent", "a.img"}, txn.Note{Command: "patch apply"}},
		{[]string{"offvm", "updates", "stage", "kb.msu", "a.img"}, txn.Note{Command: "updates stage"}},
		{[]string{"offvm", "check", "a.img"}, txn.Note{Command: "check"}},
		{[]string{"offvm"}, txn.Note{Command: "unknown"}},
	} {
		if got := noteFromArgs(tc.args); got != tc.want {
			t.Errorf("noteFromArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}
