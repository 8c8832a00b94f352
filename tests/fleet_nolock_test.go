package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/nolockfs"
)

// TestFleetNoLocks: a library on a file system that refuses byte-range
// locks (nolockfs: a FUSE passthrough answering ENOLCK, as NFSv3 mounted
// without its lock manager does; txn's TestLockNoLocks shows qemu-io
// failing to lock there too). patch apply fails on every image with
// "txn: lock IMAGE byte 100: no locks available", exits non-zero and
// writes nothing: every image byte for byte as before, no file added
// beside them. ls lists every image as not writable and says why.
func TestFleetNoLocks(t *testing.T) {
	lib, imgs := makeFleet(t, 3)
	bundle := makeFleetBundle(t)
	mnt := t.TempDir()
	unmount, err := nolockfs.Mount(lib, mnt)
	if err != nil {
		t.Skipf("no FUSE file system here: %v", err)
	}
	defer func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	}()
	sums := map[string][32]byte{}
	for _, img := range imgs {
		sums[img] = sumFile(t, img)
	}
	before := treeOf(t, lib)

	r := runOffvm(t, "-q", "patch", "apply", "--json", bundle, mnt)
	if r.code == 0 {
		t.Fatalf("patch apply on a file system without locks exited 0:\n%s%s", r.out, r.err)
	}
	var res []shardResult
	if err := jsonLines(r.out, &res); err != nil {
		t.Fatalf("patch apply output: %v\n%s", err, r.out)
	}
	reasons := map[string]string{}
	for _, x := range res {
		reasons[x.Image] = x.Status + ": " + x.Reason
	}
	for _, img := range imgs {
		rel, _ := filepath.Rel(lib, img)
		seen := filepath.Join(mnt, rel)
		want := "txn: lock " + seen + " byte 100: no locks available"
		if got := reasons[seen]; !strings.Contains(got, want) || strings.HasPrefix(got, "applied") {
			t.Errorf("%s: %q, want a failure saying %q", seen, got, want)
		}
		if sumFile(t, img) != sums[img] {
			t.Errorf("%s changed although it could not be locked", img)
		}
	}
	if after := treeOf(t, lib); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("files beside the images changed:\nbefore %v\nafter  %v", before, after)
	}

	var infos []struct {
		Image          string  `json:"image"`
		Writable       bool    `json:"writable"`
		ReadOnlyReason *string `json:"read_only_reason"`
	}
	if err := json.Unmarshal([]byte(mustOffvm(t, "-q", "ls", "--json", mnt)), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(imgs) {
		t.Fatalf("ls listed %d images of %d", len(infos), len(imgs))
	}
	for _, inf := range infos {
		if inf.Writable || inf.ReadOnlyReason == nil || !strings.Contains(*inf.ReadOnlyReason, "refuses the image lock") ||
			!strings.Contains(*inf.ReadOnlyReason, "no locks available") {
			t.Errorf("ls: %s writable %v, reason %v; want not writable: the file system refuses the lock", inf.Image, inf.Writable, deref(inf.ReadOnlyReason))
		}
	}
}

// treeOf lists every file under dir with its size.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %v %d", rel, fi.Mode(), fi.Size()))
		return nil
	}))
	sort.Strings(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
