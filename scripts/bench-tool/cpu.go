package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The CPU time of a run is what its process tree used: the timed bash and
// every descendant it waited for (wait4's rusage of the bash), plus the
// daemons the run started and that exited before its teardown was done
// (offvm mount and ntfs-3g detach from their parent; as a subreaper,
// bench-tool inherits and reaps them), plus, for daemons started outside
// the run (a mount serving every run of a figure), the CPU time their
// /proc/PID/stat gained while the run went on (-pids). A figure's time
// means little without it on a shared machine: the wall clock counts the
// other tenants' load, the CPU time does not.

// becomeSubreaper makes the orphans of the runs' process trees children of
// bench-tool, so that their CPU time can be counted when they exit.
func becomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reapOrphans reaps the exited orphans and returns the CPU seconds they
// used. It runs only when no exec.Cmd of bench-tool is running, so it
// never takes a child os/exec waits for.
func reapOrphans() float64 {
	total := 0.0
	for {
		var ru syscall.Rusage
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if pid <= 0 || err != nil {
			return total
		}
		total += tv(ru.Utime) + tv(ru.Stime)
	}
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// procCPU is the CPU seconds the processes used so far (utime + stime of
// /proc/PID/stat); a process that is gone counts nothing.
func procCPU(pids []int) float64 {
	total := 0.0
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		// the command name, in parentheses, may hold spaces
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		k, _ := strconv.ParseFloat(f[12], 64)
		total += (u + k) / clockTicks
	}
	return total
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go runs on.
const clockTicks = 100

// parsePids reads the pids a -pids command printed, one or more a line.
func parsePids(out string) []int {
	var pids []int
	for _, f := range strings.Fields(out) {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			pids = append(pids, n)
		}
	}
	return pids
}

// loadAvg is the 1-minute load average (/proc/loadavg), 0 when unknown.
func loadAvg() float64 { return firstField("/proc/loadavg") }

// firstField is the number a /proc file such as loadavg or uptime starts
// with, 0 when it cannot be read.
func firstField(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// settle gives a daemon whose unmount just returned a moment to exit, so
// that its CPU time is reaped with the run that used it.
func settle() { time.Sleep(20 * time.Millisecond) }

// reapRunOrphans reaps what a run left, waiting up to limit for the
// orphans started since since (boot-relative clock ticks, bootTicks) to
// exit: a daemon stopped by the teardown may outlive it (guestunmount
// returns before its qemu exits), and reaped during the other side's next
// run its CPU time would be counted there — a 1-second offvm run showed
// 28 s of guestmount's CPU that way. Children older than the run (none in
// make bench; a test's helper) are not waited for.
func reapRunOrphans(since int64, limit time.Duration) float64 {
	total := reapOrphans()
	for deadline := time.Now().Add(limit); ; {
		left := childrenSince(since)
		if len(left) == 0 {
			return total
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "bench-tool: processes %v of a run still alive %s after its teardown: their CPU time is not counted\n", left, limit)
			return total
		}
		time.Sleep(20 * time.Millisecond)
		total += reapOrphans()
	}
}

// bootTicks is the time since boot in clock ticks, the unit of a
// process's start time in /proc/PID/stat.
func bootTicks() int64 { return int64(firstField("/proc/uptime") * clockTicks) }

// childrenSince lists bench-tool's children started at or after since
// (zombies included: they are about to be reaped).
func childrenSince(since int64) []int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		start, _ := strconv.ParseInt(f[19], 10, 64)
		if ppid == self && start >= since {
			out = append(out, pid)
		}
	}
	return out
}
