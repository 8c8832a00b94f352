package testutil

import (
	"syscall"
	"time"
)

// CPUTime is the user+system CPU time of this process: on a shared
// machine it measures a benchmark's own work where wall time measures the
// neighbours'.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
