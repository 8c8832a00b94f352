package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuntimeDirChecks: the runtime directory is created private, and one
// that is a symlink, open to others, or another user's is refused, as
// ssh-agent refuses such a socket directory.
func TestRuntimeDirChecks(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		refuse  string // "" when it must be accepted
	}{
		{"created", func(t *testing.T, dir string) {}, ""},
		{"private, already there", func(t *testing.T, dir string) { mkdir(t, dir, 0o700) }, ""},
		{"open to others", func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }, "open to other users"},
		{"group readable", func(t *testing.T, dir string) { mkdir(t, dir, 0o750) }, "open to other users"},
		{"a symlink to a private directory", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			mkdir(t, target, 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
		{"a file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
		{"another user's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a directory away")
			}
			mkdir(t, dir, 0o700)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "offvm-1000")
			c.prepare(t, dir)
			err := ensureRuntimeDir(dir)
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
				t.Fatalf("ensureRuntimeDir: %v, want a refusal saying %q", err, c.refuse)
			case c.refuse == "":
				fi, err := os.Stat(dir)
				if err != nil || fi.Mode().Perm() != 0o700 {
					t.Fatalf("after ensureRuntimeDir: %v %v, want mode 700", fi.Mode(), err)
				}
			default:
				t.Logf("refused: %v", err)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}
