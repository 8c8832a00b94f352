//go:build unix

package vmdk

import (
	"syscall"
	"time"
)

// cpuTime is the user+system CPU time of this process: on a shared machine
// it measures our work where wall time measures the neighbours'.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
