package tests

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/offvm/offvm/internal/testutil"
)

// inPty runs offvm with a terminal as stdin, stdout and stderr (script(1)
// gives it a pty) and returns what the terminal received.
func inPty(t *testing.T, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, "script", "bsdutils")
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	// the pty script(1) makes has no size of its own here: give it one
	cmd := exec.Command("script", "-qefc", "stty cols 120 rows 40; "+offvm+" "+strings.Join(q, " "), "/dev/null")
	cmd.Env = append(cmd.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script offvm %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestProgress: on a terminal, work over many images draws a bar (mpb)
// under the per-image lines; in a pipe, or with --quiet, only the lines.
func TestProgress(t *testing.T) {
	lib, imgs := makeFleet(t, 6)
	bundle := makeFleetBundle(t)

	tty := inPty(t, "patch", "apply", "--jobs", "2", bundle, lib)
	if !strings.Contains(tty, "patching") || !strings.Contains(tty, "\x1b[") {
		t.Errorf("no bar on a terminal:\n%q", tty)
	}
	for _, img := range imgs {
		if !strings.Contains(tty, img+": applied") {
			t.Errorf("terminal output lacks the line of %s", img)
		}
	}
	if ls := inPty(t, "ls", lib); !strings.Contains(ls, "inspecting") || !strings.Contains(ls, "vm-0005") {
		t.Errorf("ls on a terminal:\n%q", ls)
	}
	if q := inPty(t, "-q", "patch", "status", bundle, lib); strings.Contains(q, "checking") || !strings.Contains(q, imgs[0]+": applied") {
		t.Errorf("--quiet on a terminal:\n%q", q)
	}

	r := runOffvm(t, "patch", "status", "--jobs", "2", bundle, lib)
	if r.code != 0 || strings.Contains(r.out+r.err, "\x1b") || strings.Contains(r.out+r.err, "checking") {
		t.Errorf("progress in a pipe: exit %d\n%q\n%q", r.code, r.out, r.err)
	}
	if n := strings.Count(r.out, ": applied"); n != len(imgs) {
		t.Errorf("pipe output has %d result lines, want %d:\n%s", n, len(imgs), r.out)
	}
}
