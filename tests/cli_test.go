package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIContract: every command of the contract has --help; usage
// mistakes exit 2 with one line on stderr; failures exit 1 naming the file.
func TestCLIContract(t *testing.T) {
	for _, cmd := range [][]string{
		{"mount"}, {"unmount"}, {"ls"}, {"inspect"}, {"reg", "export"}, {"reg", "import"},
		{"patch", "apply"}, {"patch", "status"}, {"rollback"}, {"check"}, {"report"},
	} {
		r := runOffvm(t, append(cmd, "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "USAGE") {
			t.Errorf("offvm %s --help: exit %d, output %q", strings.Join(cmd, " "), r.code, r.out)
		}
	}
	usage := [][]string{{"mount", "onlyone"}, {"ls"}, {"unmount"}, {"ls", "--no-such-flag", "x"}}
	for _, args := range usage {
		r := runOffvm(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.err, "offvm: ") {
			t.Errorf("offvm %v: exit %d (want 2), stderr %q", args, r.code, r.err)
		}
	}
	r := runOffvm(t, "ls", "/no/such/library")
	if r.code != 1 || !strings.Contains(r.err, "/no/such/library") {
		t.Errorf("ls of a missing library: exit %d, stderr %q", r.code, r.err)
	}
}

// TestLs: one line per image with format, size and file systems; --json
// says the same for scripts.
func TestLs(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), 10)
	ext := makeExt4(t, src, 16, "DATA")
	lib := t.TempDir()
	makeDisk(t, filepath.Join(lib, "one.raw"), "gpt", []part{{sizeMiB: 16, typ: "L", fs: ext}, {sizeMiB: 4, typ: "L"}})
	os.WriteFile(filepath.Join(lib, "junk.bin"), []byte("no image"), 0o644)

	out := mustOffvm(t, "ls", lib)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "IMAGE") {
		t.Fatalf("ls printed %d lines, want a header and one image:\n%s", len(lines), out)
	}
	for _, want := range []string{"one.raw", "raw", "22 MiB", "p1 ext4 16 MiB \"DATA\"", "p2 - 4.0 MiB", "yes"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("ls line %q lacks %q", lines[1], want)
		}
	}
	var infos []map[string]any
	if err := json.Unmarshal([]byte(mustOffvm(t, "ls", "--json", lib)), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("ls --json: %v (%d entries)", err, len(infos))
	}
	if infos[0]["virtual_size"] != float64(22*mib) || infos[0]["partition_table"] != "gpt" {
		t.Errorf("ls --json: %v", infos[0])
	}
}
