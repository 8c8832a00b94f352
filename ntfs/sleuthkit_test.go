package ntfs

import (
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

// checkIcat reads regular files of want through sleuthkit (fls for the
// inode numbers, icat for the bytes), a reader no one here wrote. (go-ntfs
// would be a third reader, but its dependencies are not in go.sum.)
func checkIcat(t testing.TB, img string, want map[string]entry) {
	t.Helper()
	if _, err := exec.LookPath("icat"); err != nil {
		return
	}
	out, err := exec.Command("fls", "-r", "-p", "-u", img).Output()
	if err != nil {
		t.Fatalf("fls: %v", err)
	}
	inodes := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		head, name, ok := strings.Cut(line, "\t")
		fields := strings.Fields(head)
		if !ok || len(fields) < 2 || strings.Contains(name, ":") {
			continue
		}
		inodes["/"+name] = strings.TrimSuffix(fields[len(fields)-1], ":")
	}
	checked := 0
	for _, p := range sample(want, 8) {
		e := want[p]
		ino, ok := inodes[p]
		if !ok {
			t.Errorf("fls does not list %s", p)
			continue
		}
		data, err := exec.Command("icat", img, ino).Output()
		if err != nil {
			t.Errorf("icat %s (%s): %v", p, ino, err)
			continue
		}
		h := sha256.Sum256(data)
		if hex.EncodeToString(h[:]) != e.Hash {
			t.Errorf("icat reads %s (%s) differently: %d bytes, want %d", p, ino, len(data), e.Size)
		}
		checked++
	}
	if checked == 0 && len(want) > 0 {
		t.Errorf("icat checked no file")
	}
}
