package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// busy burns CPU for about a third of a second of wall time in bash.
const busy = `n=0; while [ $n -lt 40000 ]; do n=$((n + 1)); done`

// A run's CPU time counts what its tree used: the timed bash, a child it
// waited for, an orphan that outlived it (a daemon detached from its
// parent, as offvm mount and ntfs-3g are) and a daemon started before the
// run (-pids). Each case would count (nearly) nothing if its source were
// missed.
func TestRunCPUCountsTheTree(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	daemon := startBusyDaemon(t, filepath.Join(dir, "go"))
	time.Sleep(50 * time.Millisecond) // older than the runs: they do not wait for it to exit
	for _, c := range []struct {
		name, run, teardown, pids string
		wantCPU                   bool
	}{
		{"sleeping", "sleep 0.2", "", "", false},
		{"child", "bash -c '" + busy + "'", "", "", true},
		{"orphan", "setsid bash -c '" + busy + "; touch " + done + "' </dev/null >/dev/null 2>&1 &",
			"while [ ! -e " + done + " ]; do sleep 0.02; done; rm -f " + done, "", true},
		{"daemon", "touch " + filepath.Join(dir, "go") + "; while [ -e " + filepath.Join(dir, "go") + " ]; do sleep 0.02; done",
			"", "echo " + strconv.Itoa(daemon), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &figure{id: c.name, run: [2]string{c.run, c.run}, teardown: c.teardown, pids: c.pids}
			becomeSubreaper()
			r, err := f.once(offvmSide, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.cpu >= 0.05; got != c.wantCPU {
				t.Errorf("run %q used %.3fs of CPU (wall %.3fs), want CPU counted: %v", c.run, r.cpu, r.secs, c.wantCPU)
			}
		})
	}
}

// startBusyDaemon starts a bash that, each time the file appears, burns
// CPU and removes it: a daemon serving the runs, started before them.
func startBusyDaemon(t *testing.T, trigger string) int {
	t.Helper()
	f := &figure{}
	cmd := f.command("while :; do if [ -e "+trigger+" ]; then "+busy+"; rm -f "+trigger+"; fi; sleep 0.02; done", offvmSide, 0)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func TestParsePidsAndLoad(t *testing.T) {
	if got := parsePids("12 x\n34\n-1\n"); len(got) != 2 || got[0] != 12 || got[1] != 34 {
		t.Errorf("parsePids = %v, want [12 34]", got)
	}
	if _, err := os.Stat("/proc/loadavg"); err == nil && loadAvg() < 0 {
		t.Errorf("load average %v", loadAvg())
	}
	if procCPU([]int{os.Getpid()}) < 0 || procCPU([]int{1 << 30}) != 0 {
		t.Error("procCPU of a missing process must be 0")
	}
}

// A daemon a run's setup started and its teardown stopped, but that exits
// only after the teardown returned (guestunmount returns before its qemu
// is gone), is counted with its own run, not with the next one.
func TestRunCPUWaitsForStoppedDaemons(t *testing.T) {
	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")
	daemon := "setsid bash -c 'while [ ! -e " + stop + " ]; do sleep 0.02; done; sleep 0.3; " + busy + "' </dev/null >/dev/null 2>&1 &"
	f := &figure{id: "late", run: [2]string{"true", "true"}, setup: daemon, teardown: "touch " + stop}
	becomeSubreaper()
	r, err := f.once(offvmSide, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.cpu < 0.05 {
		t.Errorf("the late daemon's CPU was not counted with its run: %.3fs", r.cpu)
	}
	next, err := (&figure{id: "next", run: [2]string{"sleep 0.5", "sleep 0.5"}}).once(offvmSide, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if next.cpu >= 0.05 {
		t.Errorf("the next run was charged %.3fs of CPU it did not use", next.cpu)
	}
}
