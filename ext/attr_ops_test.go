package ext

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/offvm/offvm/volume"
)

// chmod and chown land in the inode as debugfs reads it, and e2fsck finds
// the checksums right; the type bits stay.
func TestSetModeOwner(t *testing.T) {
	requireE2fs(t)
	img := mkfs(t, "ext4", 16, "")
	v, done := openRW(t, img)
	f, err := v.Create(rootIno, "tool", 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Mkdir(rootIno, "dir", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ino      volume.Ino
		mode     os.FileMode
		uid, gid int64
	}{
		{f.Ino, 0o755 | os.ModeSetuid, 0, 0},
		{f.Ino, 0o600, 70000, -1}, // a 32-bit uid; the gid is kept
		{f.Ino, 0o600, -1, 42},    // the uid is kept
		{d.Ino, 0o777 | os.ModeSticky, 5, 6},
	}
	for _, c := range cases {
		if err := v.SetMode(c.ino, c.mode); err != nil {
			t.Fatal(err)
		}
		if err := v.SetOwner(c.ino, c.uid, c.gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
	done()
	e2fsckClean(t, img)
	tool := debugfs(t, img, "stat /tool", false)
	for _, want := range []string{"Type: regular", "Mode:  0600", "User: 70000", "Group:    42"} {
		if !strings.Contains(tool, want) {
			t.Errorf("debugfs stat /tool: no %q in\n%s", want, tool)
		}
	}
	dir := debugfs(t, img, "stat /dir", false)
	for _, want := range []string{"Type: directory", "Mode:  01777", "User:     5", "Group:     6"} {
		if !strings.Contains(dir, want) {
			t.Errorf("debugfs stat /dir: no %q in\n%s", want, dir)
		}
	}
	v2 := openImage(t, img)
	a, err := v2.Lookup(rootIno, "tool")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%o", a.Mode.Perm()); got != "600" || !a.Mode.IsRegular() {
		t.Errorf("read back mode %v", a.Mode)
	}
}
